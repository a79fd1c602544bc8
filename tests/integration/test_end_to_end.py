"""The demo, end to end: every DAG through ``dag.test()`` on the sample data, then once more.

Checks the warehouse, the MLflow registry and the orders ledger after the first run, and that
the second run leaves every data table exactly as the first left it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.config import get_settings
from tests.support.demo import load_demo
from tests.support.warehouse import empty_data_tables

# Run logs may grow on a rerun; everything else must not change at all.
DATA_TABLES = ("bars", "quarantine", "features", "predictions", "plans", "target_weights",
               "orders", "order_events", "fills", "positions", "broker_accounts", "controls")

pytestmark = pytest.mark.slow


def _fingerprint(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        return {
            table: tuple(conn.execute(sa.text(
                f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                f"FROM {table} t")).one())
            for table in DATA_TABLES
        }


@pytest.fixture(scope="module")
def demo_runs(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory):
    """The demo twice, on emptied tables and a fresh MLflow store: models registered by
    earlier tests of the session would otherwise hold @champion, as on no fresh machine."""
    empty_data_tables(engine)
    store = tmp_path_factory.mktemp("demo-mlflow") / "mlflow.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        get_settings.cache_clear()
        demo = load_demo()
        first = demo.run()
        after_first = _fingerprint(engine)
        second = demo.run()
        after_second = _fingerprint(engine)
    get_settings.cache_clear()
    return demo, first, second, after_first, after_second


def test_every_stage_wrote_its_data(demo_runs, engine: sa.Engine) -> None:
    demo, first, *_ = demo_runs
    rows = first["rows"]
    assert rows["bars"] > 100_000, "the sample holds ~120k daily bars"
    assert rows["features"] > 50_000
    assert rows["predictions"] >= 400 * len(demo.REBALANCE_SESSIONS)
    assert rows["orders"] > 0 and rows["fills"] == rows["orders"]
    assert first["orders_by_status"] == {"filled": rows["orders"]}
    assert first["model"]["champion"] is not None
    assert 0 < sum(first["top_weights"].values()) <= 1
    with engine.connect() as conn:
        silent = conn.execute(sa.text("SELECT count(*) FROM quarantine WHERE reason = ''")).scalar()
        assert silent == 0, "every quarantined row says why"
        sessions = conn.execute(sa.text("SELECT count(DISTINCT session_date) FROM plans")).scalar()
        assert sessions == len(demo.REBALANCE_SESSIONS)
        duplicates = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT session_date, symbol, side FROM orders "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1) d")).scalar()
        assert duplicates == 0


def test_portfolio_accounts_for_every_dollar(demo_runs) -> None:
    _, first, *_ = demo_runs
    portfolio = first["portfolio"]
    assert portfolio["equity"] == pytest.approx(portfolio["cash"] + portfolio["positions_value"])
    assert portfolio["pnl"] == pytest.approx(portfolio["equity"] - portfolio["initial_capital"])


def test_rerun_changes_no_data_and_sends_no_order(demo_runs) -> None:
    _, first, second, after_first, after_second = demo_runs
    assert after_second == after_first
    assert second["rows"] == first["rows"]
    assert second["model"] == first["model"]
