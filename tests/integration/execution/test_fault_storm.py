"""Broker fault storms: 429, 500, 504 after storing, timeouts, and permanent refusals mixed in.

Whatever the storm, every intent ends as exactly one broker order or one dead letter, the
number of sends per order stays bounded, and the ledger reconciles with the broker.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipelines.execution.brokers.alpaca import AlpacaBroker
from pipelines.execution.brokers.base import TransientBrokerError
from pipelines.execution.dead_letter import list_dead_letters
from pipelines.execution.orders import plan_orders, submit_plan
from pipelines.execution.reconcile import reconcile
from tests.support.alpaca_trading_server import Fault
from tests.support.trading import PRICES, alpaca_settings, ledger, make_plan

MAX_ATTEMPTS, SDK_RETRIES, MAX_RUNS = 4, 1, 8


def _storm(rng: random.Random, n: int) -> list[Fault]:
    kinds = [
        lambda: Fault(429),
        lambda: Fault(500),
        lambda: Fault(503),
        lambda: Fault(504, store=True),  # stored, then the gateway times out
        lambda: Fault(delay=0.3),  # too slow: the client gives up, nothing stored yet
        lambda: Fault(store=True, delay=0.3),  # stored, answer too slow
        lambda: Fault(500, method="GET", path="/v2/orders:by_client_order_id"),
        lambda: Fault(429, method="GET", path="/v2/orders:by_client_order_id"),
    ]
    return [rng.choice(kinds)() for _ in range(n)]


@pytest.mark.parametrize("seed", [1, 2])
def test_fault_storm_bounded_retries_no_duplicates_dead_letters(
    warehouse, alpaca_server, seed: int
) -> None:
    settings = alpaca_settings(
        alpaca_server,
        broker_max_attempts=MAX_ATTEMPTS,
        alpaca_sdk_retry_attempts=SDK_RETRIES,
        alpaca_timeout_seconds=0.15,
        broker_concurrency=2 if seed == 2 else 1,
    )
    broker = AlpacaBroker(settings)
    rng = random.Random(seed)
    symbols = sorted(PRICES)
    plan = make_plan(warehouse, {s: 0.07 for s in symbols})
    intents = plan_orders(warehouse, settings, plan, broker)
    assert len(intents) == len(symbols)
    doomed = rng.sample([i.client_order_id for i in intents], 2)
    # A refusal is refused every time (a one-off would be a transient error): when the
    # lookup that tells a duplicate from bad parameters fails too, the order is retried.
    refusals = [
        Fault(403, client_order_id=doomed[0], body={"code": 40310000, "message": "no power"}),
        Fault(422, client_order_id=doomed[1], body={"code": 40010001, "message": "bad qty"}),
    ]
    alpaca_server.inject(*refusals * (MAX_ATTEMPTS * MAX_RUNS), *_storm(rng, 30))

    failures = 0
    for _ in range(MAX_RUNS):
        try:
            summary = submit_plan(warehouse, settings, plan, broker, f"storm-{seed}")
            break
        except TransientBrokerError:
            failures += 1  # the broker kept failing one order: the next run resumes
    else:
        pytest.fail(f"submission did not converge in {MAX_RUNS} runs")

    rows = ledger(warehouse, plan)
    assert set(rows) == {i.client_order_id for i in intents}  # nothing lost, nothing invented
    letters = {d.client_order_id: d for d in list_dead_letters(warehouse)}
    assert set(letters) == set(doomed)
    assert letters[doomed[0]].http_status == 403 and letters[doomed[1]].http_status == 422
    at_broker = {o["client_order_id"]: o for o in alpaca_server.orders()}
    assert set(at_broker) == set(rows) - set(doomed)
    assert max(alpaca_server.created.values()) == 1  # one order per client id, ever
    for coid, row in rows.items():
        if coid in doomed:
            assert row.status == "dead_letter"
        else:
            assert row.status == "accepted" and row.broker_order_id == at_broker[coid]["id"]
            assert row.qty == int(at_broker[coid]["qty"])
    posts = Counter(
        1 for method, path, _ in alpaca_server.requests if (method, path) == ("POST", "/v2/orders")
    )[1]
    # Bounded: per order and run at most MAX_ATTEMPTS sends, each retried by alpaca-py at most
    # SDK_RETRIES times.
    assert posts <= len(intents) * MAX_ATTEMPTS * (1 + SDK_RETRIES) * (failures + 1)
    assert summary.orders == len(intents)
    alpaca_server.clear_faults()
    alpaca_server.fill()
    report = reconcile(warehouse, broker, settings, f"storm-{seed}")
    assert report.open_orders == 0
    assert {r.status for r in ledger(warehouse, plan).values()} == {"filled", "dead_letter"}
