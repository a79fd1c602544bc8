"""The planner: predictions + risk model → target weights, stored as a versioned plan.

A rebalance for session D uses predictions and prices from the close of the session before D
and trades at D's open. A plan once written is never re-optimized: a rerun returns it as it
is, because orders may already have been derived from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import OptimizationError
from pipelines.portfolio import mean_variance
from pipelines.portfolio.risk_model import ledoit_wolf, trailing_returns
from pipelines.runlog import stage_run

MIN_WEIGHT = 1e-6  # smaller optimizer output is numerical noise, not a position


@dataclass(frozen=True)
class PlanRef:
    strategy: str
    session_date: date
    plan_version: int

    #: SQL condition selecting this plan's rows, with :meth:`params` as its bind values.
    WHERE = "strategy = :s AND session_date = :d AND plan_version = :v"

    def params(self) -> dict:
        return {"s": self.strategy, "d": self.session_date, "v": self.plan_version}


def latest_plan(engine: sa.Engine, strategy: str, session_date: date) -> PlanRef | None:
    with engine.connect() as conn:
        version = conn.execute(
            sa.text(
                "SELECT max(plan_version) FROM plans WHERE strategy = :s AND session_date = :d"
            ),
            {"s": strategy, "d": session_date},
        ).scalar()
    return None if version is None else PlanRef(strategy, session_date, version)


def target_weights(engine: sa.Engine, plan: PlanRef) -> pd.Series:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT symbol, weight FROM target_weights WHERE {PlanRef.WHERE} ORDER BY symbol"
            ),
            plan.params(),
        ).all()
    return pd.Series({symbol: weight for symbol, weight in rows}, name="weight", dtype=float)


def build_plan(
    engine: sa.Engine,
    settings: Settings,
    session_date: date,
    model_name: str,
    model_version: str,
    run_id: str,
) -> PlanRef:
    """The plan for ``session_date``: the existing one, or a new optimization (version 1)."""
    existing = latest_plan(engine, settings.strategy, session_date)
    if existing is not None:
        return existing
    as_of = calendar.previous_session(session_date)
    with stage_run(engine, run_id, "optimize", session_date=session_date, as_of=as_of) as run:
        expected = _predictions(engine, model_name, model_version, as_of)
        weights = weights_from(
            expected, trailing_returns(engine, as_of, list(expected.index)), settings
        )
        plan = PlanRef(settings.strategy, session_date, 1)
        _write(engine, plan, weights, model_name, model_version, run_id)
        run.summary = {"positions": len(weights), "invested": float(weights.sum())}
    return plan


def weights_from(expected: pd.Series, returns: pd.DataFrame, settings: Settings) -> pd.Series:
    """Target weights from expected returns and trailing daily returns (no I/O).

    The live planner and the backtest both call this: Ledoit–Wolf risk on ``returns``, the
    mean-variance optimizer, optimizer noise below :data:`MIN_WEIGHT` dropped.
    """
    weights = mean_variance.optimize(
        expected,
        ledoit_wolf(returns),
        settings.risk_aversion,
        settings.max_weight,
        budget=1 - settings.cash_buffer,
    )
    return weights[weights > MIN_WEIGHT]


def _predictions(engine: sa.Engine, model_name: str, model_version: str, as_of: date) -> pd.Series:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT symbol, expected_return FROM predictions WHERE model_name = :m "
                "AND model_version = :v AND session_date = :d"
            ),
            {"m": model_name, "v": model_version, "d": as_of},
        ).all()
    if not rows:
        raise OptimizationError(
            f"no predictions from {model_name} v{model_version} at {as_of}: run the predict "
            "step for this session first"
        )
    return pd.Series(dict(rows), dtype=float)


def _write(
    engine: sa.Engine,
    plan: PlanRef,
    weights: pd.Series,
    model_name: str,
    model_version: str,
    run_id: str,
) -> None:
    key = plan.params()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO plans (strategy, session_date, plan_version, model_name, "
                "model_version, status, risk_report, run_id) VALUES (:s, :d, :v, :m, :mv, "
                "'proposed', CAST(:r AS jsonb), :run)"
            ),
            {**key, "m": model_name, "mv": model_version, "r": json.dumps(None), "run": run_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO target_weights (strategy, session_date, plan_version, symbol, "
                "weight) VALUES (:s, :d, :v, :sym, :w)"
            ),
            [{**key, "sym": symbol, "w": float(w)} for symbol, w in weights.items()],
        )
