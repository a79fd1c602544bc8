"""A plan's status only moves forward, its orders are frozen at approval, and only an explicit
re-plan writes a new version: on real sample bars with the simulated broker."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from pipelines import calendar, jobs
from pipelines.config import get_settings
from pipelines.errors import PlanConflict, RiskLimitBreached
from pipelines.execution.brokers.simulated import SimulatedBroker
from pipelines.execution.orders import submit_plan
from pipelines.portfolio import plan_state
from pipelines.portfolio.plan_state import plan_lock
from pipelines.portfolio.planner import build_plan, replan
from pipelines.risk.gate import check_plan

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T",
           "PFE", "MRK", "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]  # fmt: skip
DAY = date(2010, 8, 16)


@pytest.fixture
def market(warehouse: sa.Engine, load_sample_bars) -> sa.Engine:
    load_sample_bars(SYMBOLS)
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (model_name, model_version, session_date, symbol, "
                "expected_return, feature_set_version, run_id) "
                "VALUES ('m', '1', :d, :s, :r, 'f', 't')"
            ),
            [
                {"d": calendar.previous_session(DAY), "s": s, "r": 0.0005 * (i % 7 - 3)}
                for i, s in enumerate(SYMBOLS)
            ],
        )
    return warehouse


@pytest.fixture(autouse=True)
def limits(monkeypatch) -> None:
    """The jobs read settings from the environment: the same limits as :func:`_settings`."""
    for name, value in [("MAX_WEIGHT", "0.15"), ("MAX_ORDER_NOTIONAL", "200000"),
                        ("RISK_MODEL", "ledoit_wolf"), ("BROKER", "simulated")]:  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def _settings(**changes):
    get_settings.cache_clear()
    base = {"max_weight": 0.15, "max_order_notional": 200_000.0, "risk_model": "ledoit_wolf"}
    return get_settings().model_copy(update={**base, **changes})


def _rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


FROZEN = "SELECT client_order_id, symbol, side, qty FROM plan_orders ORDER BY 1"
LEDGER = "SELECT client_order_id, symbol, side, qty FROM orders ORDER BY 1"


def test_orders_are_frozen_at_approval_and_submission_sends_exactly_those(market) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    check_plan(market, settings, plan, broker)
    frozen = _rows(market, FROZEN)
    assert frozen and _rows(market, "SELECT status FROM plans") == [("approved",)]
    # The account changes after approval (cash doubles): a recomputation would size
    # every order differently; the frozen orders do not move.
    with market.begin() as conn:
        conn.execute(sa.text("UPDATE broker_accounts SET cash = cash * 2"))
    assert check_plan(market, settings, plan, broker).approved  # the decision stands
    assert _rows(market, FROZEN) == frozen
    summary = submit_plan(market, settings, plan, broker, "test")
    assert summary.sent == len(frozen) and _rows(market, LEDGER) == frozen
    assert _rows(market, "SELECT status FROM plans") == [("submitted",)]


def test_status_never_moves_back(market) -> None:
    settings = _settings()
    broker = SimulatedBroker(market, settings)
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    check_plan(market, settings, plan, broker)
    submit_plan(market, settings, plan, broker, "test")
    conflict = pytest.raises(PlanConflict, match="is submitted, not approved")
    with conflict, market.begin() as conn:
        plan_state.move(conn, plan, {"approved"}, "submitted")
    with pytest.raises(ValueError, match="not an allowed transition"), market.begin() as conn:
        plan_state.move(conn, plan, {"submitted"}, "approved")
    invalid = pytest.raises(sa.exc.IntegrityError, match="plans_status_check")
    with invalid, market.begin() as conn:
        conn.execute(sa.text("UPDATE plans SET status = 'sent'"))
    assert check_plan(market, settings, plan, broker).approved  # a rerun: stored decision
    assert _rows(market, "SELECT status FROM plans") == [("submitted",)]


def test_a_held_plan_lock_refuses_the_gate_with_one_line(market) -> None:
    settings = _settings()
    plan = build_plan(market, settings, DAY, "m", "1", "test")
    key = {"strategy": plan.strategy, "session_date": DAY.isoformat(), "plan_version": 1}
    taken, done = threading.Event(), threading.Event()

    def other_run() -> None:  # another holder (a thread: the lock is re-entrant per thread)
        with plan_lock(market, plan.strategy, DAY, "test"):
            taken.set()
            done.wait(60)

    holder = threading.Thread(target=other_run)
    holder.start()
    assert taken.wait(60)
    try:
        with pytest.raises(PlanConflict, match="another run holds") as error:
            jobs.risk_check(key)
    finally:
        done.set()
        holder.join()
    assert "\n" not in str(error.value)
    assert _rows(market, "SELECT status FROM plans") == [("proposed",)]
    jobs.risk_check(key)  # released: the gate runs
    assert _rows(market, "SELECT status FROM plans") == [("approved",)]


def test_a_blocked_session_is_replanned_only_by_the_explicit_command(market, monkeypatch) -> None:
    blocked_settings = _settings(max_order_notional=1_000.0)
    broker = SimulatedBroker(market, blocked_settings)
    v1 = build_plan(market, blocked_settings, DAY, "m", "1", "test")
    with pytest.raises(RiskLimitBreached, match="MAX_ORDER_NOTIONAL"):
        check_plan(market, blocked_settings, v1, broker)
    assert build_plan(market, blocked_settings, DAY, "m", "1", "rerun") == v1  # a plain rerun

    settings = _settings()
    monkeypatch.setattr(jobs, "predict", lambda d, r: {"model_name": "m", "model_version": "1"})
    v2 = jobs.replan(DAY, "operator")
    assert v2["plan_version"] == 2
    assert _rows(market, "SELECT plan_version, status FROM plans ORDER BY 1") == [
        (1, "superseded"),
        (2, "proposed"),
    ]
    latest = build_plan(market, settings, DAY, "m", "1", "rerun")
    assert latest.plan_version == 2
    with pytest.raises(PlanConflict, match="superseded"):
        check_plan(market, settings, v1, broker)
    check_plan(market, settings, latest, broker)
    submit_plan(market, settings, latest, broker, "test")
    ids = [r[0] for r in _rows(market, LEDGER)]
    assert ids and all(c.startswith("mlt-20100816-v2-") for c in ids)

    with pytest.raises(RiskLimitBreached, match="was submitted"):
        replan(market, settings, DAY, "m", "1", "operator", broker)
    assert len(_rows(market, "SELECT * FROM plans")) == 2
