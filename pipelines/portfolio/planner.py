"""The planner: predictions + risk model → target weights, stored as a versioned plan.

A rebalance for session D uses predictions and prices from the close of the session before D
and trades at D's open. A plan once written is never re-optimized: a rerun returns it as it
is, because orders may already have been derived from it. Two runs that optimize the same
session at once write one plan: the second insert finds the first's and returns it.

Versions: :func:`build_plan` writes version 1 and afterwards returns the latest version.
Only :func:`replan` (``mltrade replan``, an operator's explicit command) writes version
``n + 1``, in the transaction that moves version ``n`` to ``superseded``; it refuses once
version ``n`` was submitted (its orders exist). The version is part of every
``client_order_id``, so a new version's orders never collide with the old ones.

The risk model is the champion's IPCA factor structure when the champion is an IPCA model
(``RISK_MODEL=auto|ipca``), else Ledoit–Wolf on the trailing window. The optimizer and its
constraints come from settings, as one :class:`~pipelines.portfolio.config.OptimizerConfig`;
current weights (for the turnover limit/penalty and the minimum trade) come from the broker
when one is given, and then no trade is planned that the gate would refuse for its size:
each asset's weight change is capped so its order stays within ``MAX_ORDER_NOTIONAL``
(:func:`trade_caps`). A book too large to reach its target in one session walks toward it
over several.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import OptimizationError, RiskLimitBreached
from pipelines.portfolio import plan_state
from pipelines.portfolio.config import OptimizerConfig
from pipelines.portfolio.optimizer import optimize
from pipelines.portfolio.risk_model import FactorCovariance, ipca, ledoit_wolf, trailing_returns
from pipelines.runlog import stage_run
from pipelines.warehouse import plans, predictions
from pipelines.warehouse.plans import PlanRef
from pipelines.warehouse.prices import last_closes


class AccountView(Protocol):
    """Cash (USD) and shares held per symbol at one moment (a broker's ``AccountSnapshot``)."""

    @property
    def cash(self) -> float: ...

    @property
    def positions(self) -> Mapping[str, Decimal]: ...


class Broker(Protocol):
    """What planning needs of a broker (``pipelines.execution.brokers.base.Broker`` has it):
    one consistent snapshot, for current weights. Declared here, not imported, so portfolio
    does not depend on execution, which submits the plans portfolio makes."""

    def get_account_snapshot(self) -> AccountView: ...

log = logging.getLogger(__name__)

MIN_WEIGHT = 1e-6  # smaller optimizer output is numerical noise, not a position


def build_plan(
    engine: sa.Engine,
    settings: Settings,
    session_date: date,
    model_name: str,
    model_version: str,
    run_id: str,
    broker: Broker | None = None,
    factor_model: Callable[[], Any] | None = None,
) -> PlanRef:
    """The plan for ``session_date``: the latest existing one, or a new optimization
    (version 1).

    ``factor_model``: returns the predicting model's fitted IPCA structure (or None); without
    it the risk model is Ledoit–Wolf."""
    existing = plans.latest(engine, settings.strategy, session_date)
    if existing is not None:
        return existing
    return _optimize(
        engine,
        settings,
        session_date,
        model_name,
        model_version,
        run_id,
        broker,
        None,
        factor_model,
    )


def replan(
    engine: sa.Engine,
    settings: Settings,
    session_date: date,
    model_name: str,
    model_version: str,
    run_id: str,
    broker: Broker | None = None,
    factor_model: Callable[[], Any] | None = None,
) -> PlanRef:
    """A new version of ``session_date``'s plan, superseding the latest one (see the module
    docstring); version 1 when there is none. Refuses once the latest was submitted."""
    latest = plans.latest(engine, settings.strategy, session_date)
    if latest is not None:
        status, _ = plans.decision(engine, latest)
        if status == plan_state.SUBMITTED:
            raise RiskLimitBreached(
                f"plan {session_date} v{latest.plan_version} was submitted: its orders are at "
                "the broker, and a new version would trade the session twice; nothing changed"
            )
    return _optimize(
        engine, settings, session_date, model_name, model_version, run_id, broker, latest,
        factor_model,
    )


def _optimize(
    engine: sa.Engine,
    settings: Settings,
    session_date: date,
    model_name: str,
    model_version: str,
    run_id: str,
    broker: Broker | None,
    supersede: PlanRef | None,
    factor_model: Callable[[], Any] | None = None,
) -> PlanRef:
    as_of = calendar.previous_session(session_date)
    with stage_run(engine, run_id, "optimize", session_date=session_date, as_of=as_of) as run:
        expected = _predictions(engine, model_name, model_version, as_of)
        returns = trailing_returns(engine, as_of, list(expected.index))
        config = OptimizerConfig.from_settings(settings)
        risk, risk_kind, loadings = risk_model_for(
            engine, config.risk_model, model_name, model_version, as_of, returns, factor_model
        )
        current, caps = None, None
        if broker is not None:
            account = broker.get_account_snapshot()
            closes = last_closes(engine, as_of, sorted(set(account.positions) | set(risk.symbols)))
            current, equity = current_book(account, closes)
            caps = trade_caps(closes, config.max_order_notional, equity, risk.symbols)
        weights = solve(expected, risk, config, current, loadings, caps)
        version = 1 if supersede is None else supersede.plan_version + 1
        plan = PlanRef(settings.strategy, session_date, version)
        if not _write(engine, plan, weights, model_name, model_version, run_id, supersede):
            log.info("plan session_date=%s: another run wrote it first; using it", session_date)
            run.summary = {"written_by_another_run": True, "plan_version": version}
            return plan
        run.summary = {
            "plan_version": version,
            "positions": len(weights),
            "invested": float(weights.sum()),
            "gross": float(weights.abs().sum()),
            "optimizer": config.method,
            "risk_model": risk_kind,
        }
        log.info(
            "plan session_date=%s run_id=%s optimizer=%s risk_model=%s positions=%d",
            session_date,
            run_id,
            config.method,
            risk_kind,
            len(weights),
        )
    return plan


def risk_model_for(
    engine: sa.Engine,
    risk_model: str,
    model_name: str,
    model_version: str,
    as_of: date,
    returns: pd.DataFrame,
    factor_model: Callable[[], Any] | None = None,
) -> tuple[FactorCovariance, str, np.ndarray | None]:
    """``(risk model, its kind, IPCA factor loadings N×K or None)`` for the plan.

    IPCA's structure when the model is IPCA and ``risk_model`` (``RISK_MODEL``: auto, ipca,
    ledoit_wolf) allows it; Ledoit–Wolf otherwise. ``ipca`` with a non-IPCA model fails closed.
    """
    if risk_model != "ledoit_wolf":
        try:
            fitted = factor_model() if factor_model is not None else None
        except Exception as exc:  # auto falls back; an explicit ipca fails closed below
            if risk_model == "ipca":
                raise OptimizationError(f"RISK_MODEL=ipca: cannot load the model: {exc}") from exc
            log.warning("risk_model=ledoit_wolf reason=%r", f"model not loadable: {exc}")
            fitted = None
        if fitted is not None:
            from pipelines.features.store import load_features

            features = load_features(engine, as_of, as_of).droplevel("session_date")
            z = features[list(fitted.columns)]
            instruments = z.assign(_constant=1.0)
            risk = ipca(fitted.fit.gamma_beta, fitted.fit.factors, instruments, returns)
            loadings = instruments.loc[risk.symbols].to_numpy(dtype=float) @ fitted.fit.gamma_beta
            return risk, "ipca", loadings
        if risk_model == "ipca":
            raise OptimizationError(
                f"RISK_MODEL=ipca but {model_name} v{model_version} is not an IPCA model; "
                "set RISK_MODEL=auto or ledoit_wolf"
            )
    return ledoit_wolf(returns), "ledoit_wolf", None


def current_book(account: AccountView, closes: dict[str, float]) -> tuple[pd.Series, float]:
    """The broker's positions as fractions of equity and the equity (USD), valued at
    ``closes`` (USD by symbol: the closes the orders are sized on)."""
    values = {s: float(q) * closes[s] for s, q in account.positions.items() if s in closes}
    equity = account.cash + sum(values.values())
    if equity <= 0:
        raise OptimizationError(f"broker equity is {equity:,.2f} USD: nothing to allocate")
    return pd.Series(values, dtype=float) / equity, equity


def trade_caps(
    closes: dict[str, float], max_order_notional: float, equity: float, symbols: list[str]
) -> pd.Series:
    """Each symbol's largest weight change (fraction of ``equity``) whose order stays within
    ``max_order_notional`` USD at its close: ``(limit − close) / equity``. One share is kept
    in hand because orders are sized in whole shares rounded down, which can make a sell one
    share larger than its weight change. A symbol without a close is not traded."""
    prices = pd.Series(closes, dtype=float).reindex(symbols)
    return ((max_order_notional - prices) / equity).clip(lower=0.0)


def solve(
    expected: pd.Series,
    risk: FactorCovariance,
    config: OptimizerConfig,
    current: pd.Series | None = None,
    loadings: np.ndarray | None = None,
    caps: pd.Series | None = None,
) -> pd.Series:
    """Target weights (fractions of equity) from expected returns and a risk model, no I/O:
    ``config``'s optimizer under its constraints (each trade within ``caps`` when given:
    :func:`trade_caps`), optimizer noise below :data:`MIN_WEIGHT` dropped. The live planner
    and the backtest both solve through here."""
    weights = optimize(
        expected,
        risk,
        config.constraints(risk.symbols, loadings),
        current,
        method=config.method,
        risk_aversion=config.risk_aversion,
        solver=config.solver,
        trade_caps=caps,
    )
    return weights[weights.abs() > MIN_WEIGHT]


def weights_from(
    expected: pd.Series,
    returns: pd.DataFrame,
    config: OptimizerConfig,
    current: pd.Series | None = None,
) -> pd.Series:
    """:func:`solve` with the Ledoit–Wolf risk model of trailing daily ``returns``."""
    return solve(expected, ledoit_wolf(returns), config, current)


def _predictions(engine: sa.Engine, model_name: str, model_version: str, as_of: date) -> pd.Series:
    expected = predictions.read(engine, model_name, model_version, as_of)
    if expected.empty:
        raise OptimizationError(
            f"no predictions from {model_name} v{model_version} at {as_of}: run the predict "
            "step for this session first"
        )
    return expected


def _write(
    engine: sa.Engine,
    plan: PlanRef,
    weights: pd.Series,
    model_name: str,
    model_version: str,
    run_id: str,
    supersede: PlanRef | None = None,
) -> bool:
    """Insert the plan and its weights (superseding ``supersede`` in the same transaction);
    False when another run inserted this version first (nothing written)."""
    with engine.begin() as conn:
        if supersede is not None:  # a plan submitted meanwhile fails here: PlanConflict
            unsent = {plan_state.PROPOSED, plan_state.APPROVED, plan_state.BLOCKED}
            plan_state.move(conn, supersede, unsent, plan_state.SUPERSEDED)
        return plans.insert(conn, plan, weights, model_name, model_version, run_id)
