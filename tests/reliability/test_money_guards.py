"""The money-path guard (pipelines/execution/guards.py) on a real warehouse: a weekend, a
holiday, a kill switch, stale bars or a failed reconciliation stop a rebalance before
anything is written or sent, with one line that names the problem and the fix; so do the
circuit breakers on realized losses (pipelines/risk/breakers.py) before planning."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import sqlalchemy as sa

from pipelines import calendar, jobs
from pipelines.config import get_settings
from pipelines.errors import (
    KillSwitchEngaged,
    LossLimitBreached,
    NotATradingSession,
    ReconciliationError,
    StaleMarketData,
)
from pipelines.execution.brokers.simulated import SimulatedBroker
from pipelines.execution.guards import require_trading_allowed
from pipelines.risk.kill_switch import set_kill_switch
from tests.support.cli import run_cli

MONDAY = date(2010, 8, 16)
TABLES = ("plans", "target_weights", "plan_orders", "orders", "order_events", "fills",
          "reconciliations", "pipeline_runs", "broker_accounts", "sim_broker_orders",
          "controls")  # fmt: skip


def _bars(engine: sa.Engine, day: date, symbols: tuple[str, ...] = ("AAPL", "IBM")) -> None:
    ts = datetime.combine(day, time(20, 0), tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                "source) VALUES (:s, :ts, :d, 10, 10, 10, 10, 1e6, 'test')"
            ),
            [{"s": s, "ts": ts, "d": day} for s in symbols],
        )


def _fingerprint(engine: sa.Engine) -> dict[str, str]:
    """Each table's rows, hashed: equal fingerprints mean nothing was written."""
    with engine.connect() as conn:
        return {
            t: conn.execute(
                sa.text(
                    f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                    f"FROM {t} x"
                )  # fmt: skip
            ).scalar_one()
            for t in TABLES
        }


@pytest.fixture
def fresh(warehouse: sa.Engine) -> sa.Engine:
    """Bars through the session before MONDAY (and before the July 5 holiday)."""
    _bars(warehouse, calendar.previous_session(MONDAY))
    _bars(warehouse, date(2010, 7, 2))
    return warehouse


def test_a_fresh_session_passes(fresh: sa.Engine) -> None:
    assert require_trading_allowed(fresh, MONDAY, "simulated") is None


@pytest.mark.parametrize(
    "day", [date(2010, 8, 14), date(2010, 8, 15), date(2010, 7, 5)], ids=["sat", "sun", "july4"]
)
def test_weekends_and_holidays_are_refused_by_every_entry_point(fresh: sa.Engine, day) -> None:
    before = _fingerprint(fresh)
    with pytest.raises(NotATradingSession, match=f"{day} .* is not an NYSE session"):
        require_trading_allowed(fresh, day, "simulated")
    with pytest.raises(NotATradingSession):
        jobs.rebalance(day, "probe")
    with pytest.raises(NotATradingSession):
        jobs.plan(day, "m", "1", "probe")
    assert _fingerprint(fresh) == before


def test_cli_rebalance_on_a_saturday_exits_nonzero_with_one_line_and_sends_nothing(
    fresh: sa.Engine, capsys
) -> None:
    before = _fingerprint(fresh)
    for saturday_then_sunday in ("2010-08-14", "2010-08-15"):
        shown = run_cli(capsys, "rebalance", "--date", saturday_then_sunday)
        assert shown.code not in (0, None)
        text = " ".join((shown.out + shown.err).split())
        assert "is not an NYSE session" in text and "Traceback" not in text
    assert _fingerprint(fresh) == before


def test_the_session_is_checked_before_anything_else(fresh: sa.Engine) -> None:
    set_kill_switch(fresh, True, "incident")
    with pytest.raises(NotATradingSession):
        require_trading_allowed(fresh, date(2010, 8, 14), "simulated")


def test_kill_switch_blocks_planning(fresh: sa.Engine) -> None:
    set_kill_switch(fresh, True, "broker outage")
    before = _fingerprint(fresh)
    with pytest.raises(KillSwitchEngaged, match="broker outage.*kill-switch off"):
        jobs.rebalance(MONDAY, "probe")
    assert _fingerprint(fresh) == before


def test_stale_bars_block_and_name_the_missing_session(warehouse: sa.Engine) -> None:
    _bars(warehouse, date(2010, 8, 12))  # Thursday; Monday's rebalance needs Friday's closes
    before = _fingerprint(warehouse)
    with pytest.raises(StaleMarketData, match=r"no bars for 2010-08-13.*newest: 2010-08-12"):
        jobs.rebalance(MONDAY, "probe")
    assert _fingerprint(warehouse) == before


def test_no_bars_at_all_is_stale(warehouse: sa.Engine) -> None:
    with pytest.raises(StaleMarketData, match="newest: none.*mltrade ingest"):
        require_trading_allowed(warehouse, MONDAY, "alpaca")


def test_a_failed_reconciliation_blocks_until_one_passes(fresh: sa.Engine) -> None:
    with fresh.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO reconciliations (broker, ok, orders_checked, orders_updated, problems) "
            "VALUES ('simulated', false, 1, 0, '[\"AAPL: broker holds 5, ledger fills say 0\"]')"
        ))  # fmt: skip
    with pytest.raises(ReconciliationError, match="reconcile` passes: AAPL: broker holds 5"):
        require_trading_allowed(fresh, MONDAY, "simulated")
    require_trading_allowed(fresh, MONDAY, "alpaca")  # another broker's record is not ours
    with fresh.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO reconciliations (broker, ok, orders_checked, orders_updated) "
            "VALUES ('simulated', true, 1, 0)"
        ))  # fmt: skip
    require_trading_allowed(fresh, MONDAY, "simulated")


def _bought(engine: sa.Engine, symbol: str, qty: int, price: float, day: date) -> None:
    """A filled buy of ``qty`` ``symbol`` at ``price`` (commission 0) on ``day``."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO plans (strategy, session_date, plan_version, model_name, model_version, "
            "status, run_id) VALUES ('s', :d, 1, 'm', '1', 'submitted', 't')"
        ), {"d": day})  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, symbol, "
            "side, qty, status, broker, model_name, model_version) VALUES "
            "('c1', 's', :d, 1, :s, 'buy', :q, 'filled', 'simulated', 'm', '1')"
        ), {"d": day, "s": symbol, "q": qty})  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO fills (fill_id, client_order_id, symbol, side, qty, price, commission, "
            "filled_at) VALUES ('c1-1', 'c1', :s, 'buy', :q, :p, 0, :t)"
        ), {"s": symbol, "q": qty, "p": price,
            "t": datetime.combine(day, time(14, 30), tzinfo=UTC)})  # fmt: skip


@pytest.mark.parametrize(
    ("limit", "other", "message"),
    [
        ("MAX_DRAWDOWN", "DAILY_LOSS_LIMIT", "drawdown 10.00% above MAX_DRAWDOWN 5.00%"),
        ("DAILY_LOSS_LIMIT", "MAX_DRAWDOWN", "daily loss 10.00% above DAILY_LOSS_LIMIT 5.00%"),
    ],
)
def test_a_realized_loss_past_its_limit_stops_planning(
    fresh: sa.Engine, monkeypatch, limit: str, other: str, message: str
) -> None:
    """10,000 AAPL bought at 20 on the session before, closing at 10: equity fell from 1M
    to 900k on that one session, a 10% daily loss and drawdown."""
    for name, value in [(limit, "0.05"), (other, "0.5"), ("BROKER", "simulated")]:
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    SimulatedBroker(fresh, get_settings())  # the account the plan task would open
    _bought(fresh, "AAPL", 10_000, 20.0, calendar.previous_session(MONDAY))
    before = _fingerprint(fresh)
    with pytest.raises(LossLimitBreached, match=f"circuit breaker: {message} .*raise the limit"):
        jobs.plan(MONDAY, "m", "1", "probe")
    assert _fingerprint(fresh) == before
    monkeypatch.setenv(limit, "0.11")  # a limit above the loss lets the plan task go on
    get_settings.cache_clear()
    with pytest.raises(Exception, match="no predictions") as passed:
        jobs.plan(MONDAY, "m", "1", "probe")
    assert not isinstance(passed.value, LossLimitBreached)
