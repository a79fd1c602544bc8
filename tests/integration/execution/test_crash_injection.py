"""Crash injection: the order-submission process is killed with SIGKILL at random points, then
the submission is run again; over many seeded trials no order is duplicated or lost.

Kill points: before the ledger write, right after it, between the ledger's ``submitted`` and
the broker call, after the broker's answer but before the ledger took it, and — from the
local Alpaca server — after the broker stored the order but before its answer left. Each
trial is a new plan (its own strategy) of a few orders against one server and one warehouse;
the submission runs in a real child process (forked from a pre-imported worker, so a trial
costs milliseconds, not an interpreter start) and the rerun in this process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.execution.brokers.alpaca import AlpacaBroker
from pipelines.execution.orders import plan_orders, submit_plan
from pipelines.execution.reconcile import reconcile
from tests.support.alpaca_trading_server import Fault
from tests.support.trading import PRICES, alpaca_settings, ledger, make_plan

ROOT = Path(__file__).resolve().parents[3]
TRIALS = 50
SEED = 20261124
# Where the process dies; "server_after_store" is done by the server (Fault.kill_client).
POINTS = ("before_ledger", "after_ledger", "before_send", "after_send", "server_after_store")
PER_ORDER = {"before_send", "after_send", "server_after_store"}


@pytest.mark.slow
def test_sigkill_at_random_points_never_duplicates_or_loses_orders(
    warehouse, alpaca_server
) -> None:
    settings = alpaca_settings(alpaca_server)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BROKER": "alpaca",
        "ALPACA_API_KEY": alpaca_server.api_key,
        "ALPACA_SECRET_KEY": alpaca_server.secret_key,
        "ALPACA_BASE_URL": alpaca_server.url,
        "ALPACA_SDK_RETRY_ATTEMPTS": "0",
        "BROKER_BACKOFF_SECONDS": "0",
        "BROKER_RATE_LIMIT_PER_MINUTE": "60000",
        "BROKER_RATE_BURST": "100",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.submit_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert worker.stdin is not None and worker.stdout is not None
    broker = AlpacaBroker(settings)
    rng = random.Random(SEED)
    killed: Counter[str] = Counter()
    try:
        for trial in range(TRIALS):
            strategy = f"crash-{trial:03d}"
            picks = rng.sample(sorted(PRICES), 3)
            plan = make_plan(warehouse, {s: rng.uniform(0.05, 0.2) for s in picks}, strategy)
            expected = {
                (i.client_order_id, i.symbol, i.side, i.qty)
                for i in plan_orders(warehouse, settings, plan, broker)
            }
            point = rng.choice(POINTS)
            at = rng.randint(1, len(expected)) if point in PER_ORDER else 1
            if point == "server_after_store":
                alpaca_server.inject(Fault(store=True, kill_client=True, skip=at - 1))
            job = {
                "strategy": strategy,
                "session_date": plan.session_date.isoformat(),
                "crash_point": None if point == "server_after_store" else point,
                "crash_at": at,
            }
            worker.stdin.write(json.dumps(job) + "\n")
            worker.stdin.flush()
            answer = json.loads(worker.stdout.readline())
            assert answer["signal"] == signal.SIGKILL, (trial, point, at, answer)
            assert alpaca_server.pending_faults() == 0
            killed[point] += 1
            _wait_until_the_killed_session_is_gone(warehouse)

            submit_plan(warehouse, settings, plan, broker, f"rerun-{trial}")

            rows = ledger(warehouse, plan)
            assert {(c, r.symbol, r.side, r.qty) for c, r in rows.items()} == expected, trial
            for coid, row in rows.items():
                at_broker = alpaca_server.order_by_client_id(coid)
                assert at_broker is not None, f"trial {trial}: {coid} lost ({point} {at})"
                assert row.status == "accepted" and row.broker_order_id == at_broker["id"]
            everything = ledger(warehouse)
            assert {o["client_order_id"] for o in alpaca_server.orders()} == set(everything)
            assert max(alpaca_server.created.values()) == 1, f"duplicate in trial {trial}"
            # Fill at the broker; the ledger must then agree on orders, fills and positions.
            alpaca_server.fill()
            reconcile(warehouse, broker, settings, f"rerun-{trial}")
    finally:
        worker.stdin.close()
        worker.wait(timeout=30)
    assert sum(killed.values()) == TRIALS and set(killed) == set(POINTS), killed
    sells = sum(1 for r in ledger(warehouse).values() if r.side == "sell")
    assert sells > 0  # later trials sell what earlier ones bought: both sides were crashed


def _wait_until_the_killed_session_is_gone(warehouse: sa.Engine) -> None:
    """A killed process's database session ends when the server notices the closed socket,
    which can be after the rerun starts (then the rerun's plan lock is refused, rightly, as
    for any run that is still going): wait until no other session holds an advisory lock."""
    for _ in range(200):
        with warehouse.connect() as conn:
            held = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        if not held:
            return
        time.sleep(0.05)
    raise AssertionError("the killed submission's session still holds its lock after 10 s")
