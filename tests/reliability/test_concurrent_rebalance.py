"""Concurrent rebalances of one session, in real processes, against the local Alpaca server
with a deliberately slow account answer: one plan, one set of orders (each sent once), and
the loser gets one line (PlanConflict) whatever the start offset.

Each scenario forks two processes from a pre-imported worker (tests/support/rebalance_worker),
the second ``offset`` seconds after the first. ``rebalance`` runs ``jobs.rebalance`` (the CLI's
path); ``dag`` runs ``jobs.plan``/``risk_check``/``submit`` one after another as the Airflow
tasks do; ``submit`` runs two ``jobs.submit`` on one approved plan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import calendar
from tests.support.alpaca_trading_server import AlpacaTradingServer, Fault
from tests.support.trading import make_plan

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2010, 8, 16)
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T",
           "PFE", "MRK", "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]  # fmt: skip
SLOW_ACCOUNT = 1.0  # seconds the server holds each account answer


@pytest.fixture(scope="module")
def server() -> Iterator[AlpacaTradingServer]:
    with AlpacaTradingServer(cash=1_000_000.0, default_price=None) as s:
        yield s


@pytest.fixture(scope="module")
def worker(warehouse_url: str, server: AlpacaTradingServer) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WAREHOUSE_URL": warehouse_url,
        "BROKER": "alpaca",
        "ALPACA_API_KEY": server.api_key,
        "ALPACA_SECRET_KEY": server.secret_key,
        "ALPACA_BASE_URL": server.url,
        "ALPACA_SDK_RETRY_ATTEMPTS": "0",
        "ALPACA_TIMEOUT_SECONDS": "20",
        "BROKER_BACKOFF_SECONDS": "0",
        "BROKER_RATE_LIMIT_PER_MINUTE": "60000",
        "BROKER_RATE_BURST": "100",
        "RISK_MODEL": "ledoit_wolf",
        "MAX_WEIGHT": "0.15",
        "MAX_ORDER_NOTIONAL": "200000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.rebalance_worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


@pytest.fixture
def market(warehouse: sa.Engine, load_sample_bars, server: AlpacaTradingServer) -> sa.Engine:
    """Sample bars (validated), predictions for DAY, and the server priced at the last closes."""
    load_sample_bars(SYMBOLS)
    as_of = calendar.previous_session(DAY)
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (model_name, model_version, session_date, symbol, "
                "expected_return, feature_set_version, run_id) "
                "VALUES ('m', '1', :d, :s, :r, 'f', 't')"
            ),
            [{"d": as_of, "s": s, "r": 0.0005 * (i % 7 - 3)} for i, s in enumerate(SYMBOLS)],
        )
        closes = conn.execute(
            sa.text("SELECT symbol, close FROM bars WHERE session_date = :d"), {"d": as_of}
        ).all()
    server.reset(cash=1_000_000.0)
    for symbol, close in closes:
        server.set_price(symbol, float(close))
    return warehouse


def _race(worker, tmp_path: Path, jobs: list[dict], offset: float) -> list[dict]:
    """Start the jobs ``offset`` seconds apart; each one's outcome (see the worker)."""
    assert worker.stdin is not None and worker.stdout is not None
    outs = []
    for n, job in enumerate(jobs):
        if n:
            time.sleep(offset)
        out = tmp_path / f"job{n}.json"
        worker.stdin.write(json.dumps({**job, "session_date": DAY.isoformat(),
                                       "out": str(out)}) + "\n")  # fmt: skip
        worker.stdin.flush()
        outs.append(out)
    worker.stdin.write('"wait"\n')
    worker.stdin.flush()
    exits = json.loads(worker.stdout.readline())
    results = [json.loads(out.read_text()) for out in outs]
    for result, status in zip(results, exits, strict=True):
        assert status["signal"] is None, results
        assert result["ok"] or result["error_type"] == "PlanConflict", result
        if not result["ok"]:
            assert status["exit"] == 1 and "\n" not in result["message"], result
            assert "changed nothing" in result["message"] and "sent no order" in result["message"]
    return results


def _one_set_of_orders_each_sent_once(engine: sa.Engine, server: AlpacaTradingServer) -> None:
    with engine.connect() as conn:
        plans = conn.execute(sa.text("SELECT plan_version, status FROM plans")).all()
        frozen = set(conn.execute(sa.text(
            "SELECT client_order_id, symbol, side, qty FROM plan_orders")).all())  # fmt: skip
        ledger = set(conn.execute(sa.text(
            "SELECT client_order_id, symbol, side, qty FROM orders")).all())  # fmt: skip
    assert [tuple(p) for p in plans] == [(1, "submitted")]
    at_broker = {(o["client_order_id"], o["symbol"], o["side"], o["qty"]) for o in server.orders()}
    assert frozen and {c for c, *_ in ledger} == {c for c, *_ in frozen}
    assert {(c, s, side, float(q)) for c, s, side, q in frozen} == {
        (c, s, side, float(q)) for c, s, side, q in at_broker
    }
    assert set(server.created.values()) == {1}  # no client id created twice
    sides = {}
    for _, symbol, side, _ in frozen:
        assert sides.setdefault(symbol, side) == side, f"{symbol} bought and sold in one plan"


@pytest.mark.slow
@pytest.mark.parametrize("offset", [0.0, 1.2])
def test_two_rebalances_of_one_session(market, server, worker, tmp_path, offset) -> None:
    server.inject(*[Fault(method="GET", path="/v2/account", delay=SLOW_ACCOUNT)] * 4)
    results = _race(worker, tmp_path, [{"mode": "rebalance"}] * 2, offset)
    server.clear_faults()
    # A rebalance takes longer than the offset (two slow account reads): they overlap, so
    # exactly one wins, whichever took the lock first.
    assert sorted(r["ok"] for r in results) == [False, True]
    _one_set_of_orders_each_sent_once(market, server)


@pytest.mark.slow
@pytest.mark.parametrize("offset", [0.5, 2.5])
def test_a_cli_rebalance_beside_the_dag_tasks(market, server, worker, tmp_path, offset) -> None:
    server.inject(*[Fault(method="GET", path="/v2/account", delay=SLOW_ACCOUNT)] * 4)
    results = _race(worker, tmp_path, [{"mode": "rebalance"}, {"mode": "dag"}], offset)
    server.clear_faults()
    # Whoever got the lock sent every order; a later successful run (the DAG's steps after
    # the CLI's finished) was a rerun that sent nothing new.
    sent = [r["result"]["submit"]["sent"] for r in results if r["ok"]]
    assert sent and sorted(sent)[:-1] == [0] * (len(sent) - 1)
    _one_set_of_orders_each_sent_once(market, server)
    assert sum(sent) == len(server.orders())


@pytest.mark.slow
def test_two_submits_of_one_plan_send_each_order_once(market, server, worker, tmp_path) -> None:
    plan = make_plan(market, {"AAPL": 0.1, "IBM": 0.1, "KO": 0.1, "PG": 0.05}, "ml_mean_variance",
                     DAY)  # fmt: skip
    server.inject(Fault(method="POST", path="/v2/orders", delay=1.0))
    key = {"strategy": plan.strategy, "session_date": DAY.isoformat(), "plan_version": 1}
    results = _race(worker, tmp_path, [{"mode": "submit", "plan_key": key}] * 2, 0.2)
    sent = [r["result"]["sent"] for r in results if r["ok"]]
    assert sum(sent) == 4 and 4 in sent  # one submitter sent all four; a loser sent none
    assert set(server.created.values()) == {1} and len(server.created) == 4
