"""The warehouse's data tables for tests: emptying them, and dropping test databases."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

DATA_TABLES = (
    "order_events", "fills", "orders", "target_weights", "plans", "predictions", "features",
    "quarantine", "validation_runs", "bars", "positions", "broker_accounts", "controls",
    "pipeline_runs", "sim_broker_orders", "corporate_actions", "minute_bars", "universe",
    "plan_stress", "backtest_runs", "backtest_equity", "backtest_weights", "backtest_trades",
    "backtest_events", "dead_letter_orders", "reconciliations", "plan_orders",
    "news_scores", "news_items",
    "champion_changes", "equity_marks",
)


def empty_data_tables(engine: sa.Engine) -> None:
    """Truncate every data table (identities restart), as on a freshly migrated warehouse."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))


def drop_database(admin_uri: str, name: str) -> None:
    """Drop database ``name`` (if it exists, its sessions ended) on the server at ``admin_uri``."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
