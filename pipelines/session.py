"""One pre-market rebalance on the money path: the step the live job and the backtest share.

For session D (trading at D's open, on data up to the close of the session before, ``as_of``):

1. reconcile: the broker reports fills that are due (the simulated venue fills orders of a
   session once its bar exists), the ledger follows and must agree;
2. predict: expected returns dated ``as_of`` are written to ``predictions`` (live: the
   @champion model; backtest: the strategy under test);
3. :func:`before_planning`: the money-path guard and the circuit breakers on realized losses;
4. plan (optimizer, current holdings from the broker), risk gate, submission (exactly once);
5. reconcile again.

``jobs.rebalance`` runs this on the warehouse with the configured broker;
:mod:`pipelines.backtest.engine` runs it on a throwaway database with the simulated broker.
Nothing here reads the wall clock or branches on which of the two is calling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.execution.brokers.base import Broker
from pipelines.execution.guards import require_trading_allowed
from pipelines.execution.orders import submit_plan
from pipelines.execution.reconcile import reconcile
from pipelines.models.return_model import Registry
from pipelines.portfolio.planner import build_plan
from pipelines.risk.breakers import require_within_loss_limits
from pipelines.risk.gate import check_plan
from pipelines.risk.limits import RiskLimits


@dataclass(frozen=True)
class Predicted:
    """What a predictor wrote. ``factor_model`` returns the predicting model's fitted IPCA
    structure (or None); without it the plan's risk model is Ledoit–Wolf."""

    model_name: str
    model_version: str
    rows: int
    factor_model: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "model_version": self.model_version,
                "rows": self.rows}  # fmt: skip


class Predictor(Protocol):
    def __call__(self, store: sa.Engine, as_of: date, run_id: str) -> Predicted:
        """Write ``predictions`` dated ``as_of`` (the close the plan trades on)."""
        ...


def before_planning(
    store: sa.Engine, settings: Settings, broker: Broker, session_date: date
) -> None:
    """What must hold before any plan is made, for every entry point that plans (the live
    job, the DAG's plan tasks, the backtest): the money-path guard
    (:func:`pipelines.execution.guards.require_trading_allowed`: NYSE session, kill switch,
    fresh bars, a clean reconciliation; submission runs it again), then the circuit breakers
    on realized losses (:func:`pipelines.risk.breakers.require_within_loss_limits`)."""
    require_trading_allowed(store, session_date, broker.name)
    require_within_loss_limits(
        store,
        RiskLimits.from_settings(settings),
        broker.name,
        settings.initial_capital,
        calendar.previous_session(session_date),
    )


def rebalance_session(
    store: sa.Engine,
    settings: Settings,
    broker: Broker,
    session_date: date,
    run_id: str,
    predictor: Predictor,
    on_step: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the steps above for ``session_date``; return each step's summary (JSON-able).

    A breached limit raises :class:`pipelines.errors.RiskLimitBreached` from the gate and an
    infeasible plan :class:`pipelines.errors.OptimizationError`, after the plan and the
    decision are stored (fail closed: nothing is submitted).
    """
    result: dict[str, Any] = {"reconcile before": asdict(reconcile(store, broker, settings))}
    on_step("reconcile before")
    predicted = predictor(store, calendar.previous_session(session_date), run_id)
    result["predict"] = predicted.summary()
    on_step("predict")
    before_planning(store, settings, broker, session_date)
    plan = build_plan(
        store,
        settings,
        session_date,
        predicted.model_name,
        predicted.model_version,
        run_id,
        broker,
        predicted.factor_model,
    )
    result["optimize"] = asdict(plan)
    on_step("optimize")
    result["risk gate"] = asdict(check_plan(store, settings, plan, broker))
    on_step("risk gate")
    result["submit"] = asdict(submit_plan(store, settings, plan, broker, run_id))
    on_step("submit")
    result["reconcile after"] = asdict(reconcile(store, broker, settings))
    on_step("reconcile after")
    return result


def champion_predictor(registry: Registry, model_name: str) -> Predictor:
    """The live predictor: ``model_name@champion`` from ``registry`` on the store's features
    dated ``as_of``; the model it loaded also gives the plan its factor structure."""

    def predict(store: sa.Engine, as_of: date, run_id: str) -> Predicted:
        from pipelines.models.inference import predict as run_predict

        model, rows = run_predict(store, registry, model_name, as_of, run_id)
        return Predicted(model.ref.name, model.ref.version, rows, lambda: model.factor_model)

    return predict
