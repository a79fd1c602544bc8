"""Execution test helpers: settings pointing the Alpaca adapter at the local server, and plans
written straight into the warehouse (approved, with prices), so tests exercise submission
without the optimizer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from pydantic import SecretStr

from pipelines import calendar
from pipelines.config import Settings, get_settings
from pipelines.warehouse.plans import KEY, PlanRef
from tests.support.alpaca_trading_server import AlpacaTradingServer

DAY = date(2010, 8, 16)
PRICES = {
    "AAPL": 250.0,
    "IBM": 128.0,
    "MSFT": 25.0,
    "XOM": 60.0,
    "JNJ": 58.0,
    "KO": 55.0,
    "PG": 60.5,
    "GE": 15.0,
    "T": 27.0,
    "PFE": 16.0,
    "MRK": 35.0,
    "CVX": 75.0,
}


def alpaca_settings(server: AlpacaTradingServer, **changes: object) -> Settings:
    """Settings for BROKER=alpaca against ``server``: no waiting between retries in tests."""
    get_settings.cache_clear()
    return get_settings().model_copy(
        update={
            "broker": "alpaca",
            "alpaca_api_key": SecretStr(server.api_key),
            "alpaca_secret_key": SecretStr(server.secret_key),
            "alpaca_base_url": server.url,
            "alpaca_timeout_seconds": 2.0,
            "alpaca_sdk_retry_attempts": 0,
            "alpaca_sdk_retry_wait_seconds": 0.0,
            "broker_backoff_seconds": 0.0,
            "broker_rate_limit_per_minute": 60_000.0,
            "broker_rate_burst": 100,
            **changes,
        }
    )


def make_plan(
    engine: sa.Engine,
    weights: dict[str, float],
    strategy: str = "test",
    day: date = DAY,
    prices: dict[str, float] = PRICES,
) -> PlanRef:
    """An approved plan with ``weights`` and closes at ``prices`` on the session before ``day``."""
    before = calendar.previous_session(day)
    ts = datetime.combine(before, time(20, 0), tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                "source) "
                "VALUES (:s, :ts, :d, :p, :p, :p, :p, 1e6, 'test') ON CONFLICT DO NOTHING"
            ),
            [{"s": s, "ts": ts, "d": before, "p": p} for s, p in prices.items()],
        )
        conn.execute(
            sa.text(
                "INSERT INTO plans (strategy, session_date, plan_version, model_name, "
                "model_version, "
                "status, run_id) VALUES (:s, :d, 1, 'm', '1', 'approved', 'test')"
            ),
            {"s": strategy, "d": day},
        )
        if weights:
            conn.execute(
                sa.text(
                    "INSERT INTO target_weights (strategy, session_date, plan_version, symbol, "
                    "weight) "
                    "VALUES (:s, :d, 1, :sym, :w)"
                ),
                [{"s": strategy, "d": day, "sym": k, "w": w} for k, w in weights.items()],
            )
    return PlanRef(strategy, day, 1)


def ledger(engine: sa.Engine, plan: PlanRef | None = None) -> dict[str, sa.Row]:
    """Ledger rows by client_order_id (of one plan, or all)."""
    where = f"WHERE {KEY}" if plan else ""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT * FROM orders {where}"), plan.params() if plan else {}
        ).all()
    return {r.client_order_id: r for r in rows}
