"""Plan → risk gate → orders → simulated broker → reconcile, on real sample bars."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import get_settings
from pipelines.errors import (
    KillSwitchEngaged,
    OptimizationError,
    ReconciliationError,
    RiskLimitBreached,
)
from pipelines.execution.brokers.simulated import SimulatedBroker
from pipelines.execution.orders import client_order_id, submit_plan
from pipelines.execution.reconcile import portfolio_summary, reconcile
from pipelines.portfolio.planner import build_plan
from pipelines.risk.gate import check_plan
from pipelines.risk.kill_switch import set_kill_switch
from pipelines.warehouse import plans
from pipelines.warehouse.prices import last_closes

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T",
           "PFE", "MRK", "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]
DAY = date(2010, 8, 16)
LEDGER = ("orders", "order_events", "fills", "positions", "broker_accounts", "sim_broker_orders",
          "plans", "target_weights")


@pytest.fixture
def market(warehouse: sa.Engine, load_sample_bars) -> sa.Engine:
    """Sample bars for 20 large caps and predictions made at the close before DAY."""
    load_sample_bars(SYMBOLS)
    as_of = calendar.previous_session(DAY)
    with warehouse.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO predictions (model_name, model_version, session_date, symbol, "
            "expected_return, feature_set_version, run_id) "
            "VALUES ('m', '1', :d, :s, :r, 'f', 't')"),
            [{"d": as_of, "s": s, "r": 0.0005 * (i % 7 - 3)} for i, s in enumerate(SYMBOLS)])
    return warehouse


def _settings(**changes):
    get_settings.cache_clear()
    return get_settings().model_copy(
        update={"max_weight": 0.15, "max_order_notional": 200_000.0, **changes})


def _snapshot(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        return {t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2"), conn) for t in LEDGER}


def _rebalance(engine: sa.Engine, settings, broker) -> None:
    plan = build_plan(engine, settings, DAY, "m", "1", "test")
    check_plan(engine, settings, plan, broker)
    submit_plan(engine, settings, plan, broker, "test")
    reconcile(engine, broker, settings)


def test_rebalance_fills_at_the_next_open_and_reruns_change_nothing(market: sa.Engine) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    _rebalance(market, settings, broker)
    with market.connect() as conn:
        fills = pd.read_sql(sa.text("SELECT f.*, b.open FROM fills f JOIN bars b ON "
                                    "b.symbol = f.symbol AND b.session_date = :d"), conn,
                            params={"d": DAY})
        statuses = conn.execute(sa.text("SELECT DISTINCT status FROM orders")).scalars().all()
    assert len(fills) > 0 and statuses == ["filled"]
    # The one cost model: half spread + slippage + impact on the 21-session average volume.
    with market.connect() as conn:
        volume = pd.read_sql(sa.text("SELECT symbol, session_date, volume FROM bars "
                                     "WHERE session_date < :d"), conn, params={"d": DAY})
    adv = volume.sort_values("session_date").groupby("symbol")["volume"].apply(
        lambda v: v.tail(21).mean())
    adverse = (settings.spread_bps / 2 + settings.slippage_bps) / 10_000 + (
        settings.impact_coefficient * fills["qty"].astype(float) / fills["symbol"].map(adv))
    expected = fills["open"] * (1 + adverse * fills["side"].map({"buy": 1, "sell": -1}))
    pd.testing.assert_series_equal(fills["price"], expected, check_names=False, rtol=1e-12)
    assert (adverse > settings.slippage_bps / 10_000).all()  # impact is charged
    summary = portfolio_summary(market, broker, settings, DAY)
    assert summary["equity"] == pytest.approx(summary["cash"] + summary["positions_value"])

    before = _snapshot(market)
    _rebalance(market, settings, broker)
    after = _snapshot(market)
    for table in LEDGER:
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)


class CrashAfterStore(SimulatedBroker):
    """The broker stores the order, then the answer is lost (like a 504 after storing)."""

    def __init__(self, engine, settings, survive: int) -> None:
        super().__init__(engine, settings)
        self.survive = survive

    def submit_order(self, intent):
        order = super().submit_order(intent)
        if self.survive == 0:
            raise ConnectionError("connection lost after the broker stored the order")
        self.survive -= 1
        return order


def test_the_book_each_fill_moves_equals_the_book_recomputed_from_all_fills(market) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    _rebalance(market, settings, broker)
    with market.connect() as conn:  # the peer: positions and cash summed over every fill
        net = dict(conn.execute(sa.text(
            "SELECT symbol, sum(CASE side WHEN 'buy' THEN qty ELSE -qty END) FROM fills "
            "GROUP BY symbol")).all())
        spent = conn.execute(sa.text(
            "SELECT sum(CASE side WHEN 'buy' THEN qty * price ELSE -qty * price END "
            "+ commission) FROM fills")).scalar_one()
        averages = dict(conn.execute(sa.text(
            "SELECT symbol, sum(qty * price) / sum(qty) FROM fills WHERE side = 'buy' "
            "GROUP BY symbol")).all())
        book = conn.execute(sa.text("SELECT symbol, qty, avg_price FROM positions")).all()
    assert len(net) > 5
    assert {r.symbol: r.qty for r in book} == {s: q for s, q in net.items() if q}
    assert broker.get_cash() == pytest.approx(settings.initial_capital - spent, abs=1e-6)
    for row in book:  # bought once from flat: the average cost is the fill price
        assert row.avg_price == pytest.approx(averages[row.symbol], rel=1e-12)


def test_reconciliation_compares_only_what_can_still_change(market: sa.Engine) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    _rebalance(market, settings, broker)
    with market.begin() as conn:  # the last listing was an hour ago, the orders before it
        conn.execute(sa.text("UPDATE reconciliations SET listed_at = listed_at - "
                             "interval '1 hour'"))
        conn.execute(sa.text("UPDATE sim_broker_orders SET submitted_at = submitted_at - "
                             "interval '2 hours'"))
        filled = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    assert filled > 5
    assert reconcile(market, broker, settings).orders_checked == 0
    # An order placed behind the ledger's back since the last listing is still caught (for
    # a session without bars yet, so the venue does not fill it).
    with market.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO sim_broker_orders (broker_order_id, client_order_id, symbol, side, "
            "qty, session_date, status) VALUES ('x', 'manual-1', 'KO', 'buy', 5, "
            "'2030-01-02', 'accepted')"))
    with pytest.raises(ReconciliationError, match="manual-1 .* not in the ledger"):
        reconcile(market, broker, settings)


def test_an_order_stamped_before_a_listing_but_committed_after_it_is_caught(
    market: sa.Engine,
) -> None:
    """The simulated venue stamps an order when its insert begins; one still uncommitted
    while a reconciliation listed (stamped up to ``listing_overlap`` before that listing)
    is in the next listing."""
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    reconcile(market, broker, settings)
    with market.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO sim_broker_orders (broker_order_id, client_order_id, symbol, side, "
            "qty, session_date, status, submitted_at) SELECT 'x', 'late-1', 'KO', 'buy', 5, "
            "'2030-01-02', 'accepted', listed_at - interval '4 seconds' FROM reconciliations"))
    assert broker.listing_overlap > timedelta(seconds=4)
    with pytest.raises(ReconciliationError, match="late-1 .* not in the ledger"):
        reconcile(market, broker, settings)


@pytest.mark.parametrize("survive", [0, 3, 7])
def test_crash_after_the_broker_stored_an_order_never_duplicates(market, survive) -> None:
    settings = _settings()
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    check_plan(market, settings, plan, SimulatedBroker(market, settings))
    with pytest.raises(ConnectionError):
        submit_plan(market, settings, plan, CrashAfterStore(market, settings, survive), "run-1")
    summary = submit_plan(market, settings, plan, SimulatedBroker(market, settings), "run-2")
    assert summary.recovered == 1 and summary.sent == summary.orders - survive - 1
    with market.connect() as conn:
        ledger = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
        at_broker = conn.execute(sa.text("SELECT count(*) FROM sim_broker_orders")).scalar_one()
        unconfirmed = conn.execute(sa.text(
            "SELECT count(*) FROM orders WHERE status <> 'accepted'")).scalar_one()
    assert ledger == at_broker == summary.orders and unconfirmed == 0


def test_kill_switch_blocks_before_anything_is_sent(market: sa.Engine) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    set_kill_switch(market, True, "test incident")
    with pytest.raises(RiskLimitBreached, match="kill switch"):
        check_plan(market, settings, plan, broker)
    with pytest.raises(KillSwitchEngaged, match="test incident"):
        submit_plan(market, settings, plan, broker, "test")
    with market.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM sim_broker_orders")).scalar_one() == 0


def test_breached_limit_blocks_the_plan_with_the_reason(market: sa.Engine) -> None:
    settings = _settings(max_order_notional=1_000.0)
    broker = SimulatedBroker(market, settings)
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    with pytest.raises(RiskLimitBreached, match="MAX_ORDER_NOTIONAL"):
        check_plan(market, settings, plan, broker)
    with market.connect() as conn:
        status, report = conn.execute(sa.text("SELECT status, risk_report FROM plans")).one()
    assert status == "blocked" and any("MAX_ORDER_NOTIONAL" in b for b in report["breaches"])
    with pytest.raises(RiskLimitBreached, match="not approved"):
        submit_plan(market, settings, plan, broker, "test")


def test_the_planner_keeps_every_order_within_max_order_notional(market: sa.Engine) -> None:
    """With the broker's book in view the planner caps each trade, so the gate approves what
    it would block unplanned (above); from cash, the book invests what one session allows."""
    settings = _settings(max_order_notional=30_000.0)
    broker = SimulatedBroker(market, settings)
    plan = build_plan(market, settings, DAY, "m", "1", "test", broker)
    report = check_plan(market, settings, plan, broker)
    assert report.approved and 25_000.0 < report.max_order_notional <= 30_000.0
    weights = plans.target_weights(market, plan)
    closes = pd.Series(last_closes(market, calendar.previous_session(DAY), list(weights.index)))
    caps = (30_000.0 - closes) / settings.initial_capital
    # Every asset the plan may hold is bought up to its cap and still short of the budget.
    assert len(weights) >= 10 and weights.sum() < 1 - settings.cash_buffer
    assert weights.to_numpy() == pytest.approx(caps[weights.index].to_numpy(), abs=1e-6)


def test_infeasible_optimization_writes_no_plan(market: sa.Engine) -> None:
    with pytest.raises(OptimizationError, match="infeasible"):
        build_plan(market, _settings(max_weight=0.01), DAY, "m", "1", "test")
    with market.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plans")).scalar_one() == 0


def test_client_order_id_is_deterministic_and_fits_alpaca() -> None:
    a = client_order_id("ml_mean_variance", DAY, 1, "BRK.B", "buy")
    assert a == client_order_id("ml_mean_variance", DAY, 1, "BRK.B", "buy")
    assert a != client_order_id("ml_mean_variance", DAY, 2, "BRK.B", "buy")
    assert a != client_order_id("ml_mean_variance", DAY, 1, "BRK.B", "sell")
    assert len(a) <= 48
