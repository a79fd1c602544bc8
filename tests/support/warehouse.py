"""The warehouse's data tables, and emptying them between runs of a test."""

from __future__ import annotations

import sqlalchemy as sa

DATA_TABLES = (
    "order_events", "fills", "orders", "target_weights", "plans", "predictions", "features",
    "quarantine", "validation_runs", "bars", "positions", "broker_accounts", "controls",
    "pipeline_runs", "sim_broker_orders", "corporate_actions", "minute_bars", "universe",
    "plan_stress", "backtest_runs", "backtest_equity", "backtest_weights", "backtest_trades",
    "backtest_events", "dead_letter_orders", "reconciliations",
)


def empty_data_tables(engine: sa.Engine) -> None:
    """Truncate every data table (identities restart), as on a freshly migrated warehouse."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
