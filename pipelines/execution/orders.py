"""The orders ledger and exactly-once submission.

Order of events for one intent, each step committed before the next:
1. the ledger row (status ``planned``) is inserted — a unique ``client_order_id`` derived from
   (strategy, session, plan version, symbol, side), so a rerun inserts nothing new;
2. the broker is asked for that id; only if it does not know it is the ledger marked
   ``submitted`` and the order sent;
3. the ledger takes the broker's answer (``accepted``, with the broker's id), the answers to
   one side's orders in one transaction once its sends end; or the error: a transient one
   (429, 5xx, timeout) goes back to step 2 after a backoff, a permanent one (403, 422) moves
   the order to the dead-letter table.
A crash between any two steps is repaired by rerunning: step 2 finds what step 3 missed.

What is frozen when: the risk gate computes a plan's orders once, from one broker snapshot
(:meth:`Broker.get_account_snapshot`) and the previous session's closes, and stores them in
``plan_orders`` in the transaction that approves the plan. Submission copies exactly those
rows into the ledger (and moves the plan ``approved -> submitted`` in the same transaction);
it never recomputes them from positions that may already hold fills. A plan approved without
frozen orders (before migration 0050, or written by hand) is frozen at its first submission.
Submission of a session's plan holds the plan lock (:func:`plan_lock`), so two submitters
never interleave: the second fails at once with :class:`PlanConflict`.
The order state machine lives in :mod:`pipelines.execution.ledger`, the plan's in
:mod:`pipelines.portfolio.plan_state`; the guard every entry point calls first in
:mod:`pipelines.execution.guards`; the ledger's statements in :mod:`pipelines.warehouse.orders`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.controls import assert_trading_allowed
from pipelines.errors import (
    BrokerError,
    KillSwitchEngaged,
    ReconciliationError,
    RiskLimitBreached,
)
from pipelines.execution import ledger
from pipelines.execution.backoff import BrokerBackoff
from pipelines.execution.brokers.base import (
    Broker,
    BrokerOrder,
    OrderIntent,
    PermanentBrokerError,
    Side,
    TransientBrokerError,
)
from pipelines.execution.dead_letter import dead_letter, dead_letter_status
from pipelines.execution.guards import assert_reconciled, require_trading_allowed
from pipelines.execution.ledger import record_broker_states
from pipelines.monitoring.logging import redact
from pipelines.portfolio import plan_state
from pipelines.portfolio.plan_state import plan_lock
from pipelines.runlog import stage_run
from pipelines.warehouse import orders, plans
from pipelines.warehouse.controls import KILL_SWITCH
from pipelines.warehouse.plans import PlanRef
from pipelines.warehouse.prices import last_closes

log = logging.getLogger(__name__)


def client_order_id(
    strategy: str, session_date: date, plan_version: int, symbol: str, side: str
) -> str:
    """Deterministic and at most 48 characters (Alpaca's limit): a readable prefix + hash."""
    digest = hashlib.sha256(
        f"{strategy}|{session_date.isoformat()}|{plan_version}|{symbol}|{side}".encode()
    ).hexdigest()[:20]
    return f"mlt-{session_date:%Y%m%d}-v{plan_version}-{digest}"


def plan_orders(
    engine: sa.Engine, settings: Settings, plan: PlanRef, broker: Broker
) -> list[OrderIntent]:
    """Orders that move the broker's current positions to the plan's target weights.

    Equity and share counts use the previous session's closes and one broker snapshot of
    cash and positions; shares are rounded down; orders under ``MIN_ORDER_NOTIONAL`` are
    dropped; sells come first so they fund the buys.
    """
    targets = plans.target_weights(engine, plan)
    account = broker.get_account_snapshot()
    held = account.positions
    symbols = sorted(set(targets.index) | set(held))
    prices = last_closes(engine, calendar.previous_session(plan.session_date), symbols)
    missing = [s for s in symbols if s not in prices]
    if missing:
        raise RiskLimitBreached(f"no price for {missing[:5]}: cannot size orders")
    equity = account.cash + sum(float(q) * prices[s] for s, q in held.items())
    intents = [
        OrderIntent(
            client_order_id(plan.strategy, plan.session_date, plan.plan_version, symbol, side),
            symbol,
            side,
            Decimal(qty),
            plan.session_date,
        )
        for symbol, side, qty in size_orders(
            targets.to_dict(),
            {s: int(q) for s, q in held.items()},
            prices,
            equity,
            settings.min_order_notional,
        )
    ]
    return sorted(intents, key=lambda i: (i.side != "sell", i.symbol))


def size_orders(
    targets: dict[str, float],
    held: dict[str, int],
    prices: dict[str, float],
    equity: float,
    min_notional: float,
) -> list[tuple[str, Side, int]]:
    """``(symbol, side, shares)`` moving ``held`` to ``targets`` (weights of ``equity``, USD).

    No I/O: the live planner and the backtest both size orders here. Target shares are rounded
    down; orders under ``min_notional`` USD are dropped.
    """
    orders: list[tuple[str, Side, int]] = []
    for symbol in sorted(set(targets) | set(held)):
        target = math.floor(float(targets.get(symbol, 0.0)) * equity / prices[symbol])
        delta = target - int(held.get(symbol, 0))
        if delta == 0 or abs(delta) * prices[symbol] < min_notional:
            continue
        orders.append((symbol, "buy" if delta > 0 else "sell", abs(delta)))
    return orders


@dataclass(frozen=True)
class SubmitSummary:
    orders: int
    sent: int  # sent to the broker in this call
    recovered: int  # found at the broker already (a retry after a crash)
    dead_lettered: int = 0  # refused for good by the broker in this call (see dead_letter.py)


def _no_checkpoint(point: str, client_order_id: str | None) -> None:
    return None


# Named points of a submission, for crash-injection tests: before_ledger, after_ledger,
# before_send (the ledger says submitted, the broker was not called), after_send (the broker
# answered, the ledger does not know yet). Production leaves it a no-op.
checkpoint: Callable[[str, str | None], None] = _no_checkpoint


def submit_plan(
    engine: sa.Engine,
    settings: Settings,
    plan: PlanRef,
    broker: Broker,
    run_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> SubmitSummary:
    """Send the approved plan's frozen orders exactly once each.

    Refuses unless :func:`require_trading_allowed` passes (session, kill switch, fresh data,
    reconciliation) and this run gets the plan lock (else :class:`PlanConflict`). Orders
    the broker refuses for good go to the dead-letter table and the others continue; a
    broker that keeps failing transiently stops the run (a rerun resumes, asking first).
    """
    require_trading_allowed(engine, plan.session_date, broker.name)
    with plan_lock(engine, plan.strategy, plan.session_date, "submission"):
        return _submit_locked(engine, settings, plan, broker, run_id, sleep)


def _submit_locked(
    engine: sa.Engine,
    settings: Settings,
    plan: PlanRef,
    broker: Broker,
    run_id: str,
    sleep: Callable[[float], None],
) -> SubmitSummary:
    with stage_run(engine, run_id, "submit", plan=plan.__dict__) as run:
        status, model_name, model_version, frozen_at = _plan_row(engine, plan)
        if status not in (plan_state.APPROVED, plan_state.SUBMITTED):
            raise RiskLimitBreached(
                f"plan {plan} is {status!r}, not approved: the risk gate must pass first"
            )
        if status == plan_state.APPROVED:
            if frozen_at is not None:
                intents = frozen_orders(engine, plan)
            else:  # approved before orders were frozen at approval: freeze them now, once
                intents = plan_orders(engine, settings, plan, broker)
            checkpoint("before_ledger", None)
            _record_intents(engine, plan, intents, broker.name, model_name, model_version)
            checkpoint("after_ledger", None)
        outcomes = send_orders(engine, settings, broker, _unsent(engine, plan), sleep)
        summary = SubmitSummary(
            orders.count(engine, plan),
            outcomes.count(SENT),
            outcomes.count(RECOVERED),
            outcomes.count(DEAD_LETTERED),
        )
        run.summary = asdict(summary)
        if summary.dead_lettered:
            log.warning(
                "submit plan=%s dead_lettered=%d: see `mltrade orders dead-letter`",
                plan,
                summary.dead_lettered,
            )
    return summary


SENT, RECOVERED, DEAD_LETTERED = "sent", "recovered", "dead_lettered"


def send_orders(
    engine: sa.Engine,
    settings: Settings,
    broker: Broker,
    intents: list[OrderIntent],
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Send each intent exactly once; sells first (they fund the buys), then buys.

    ``BROKER_CONCURRENCY`` > 1 sends each side's orders from that many threads; the broker's
    rate limiter still bounds the request rate. The broker's answers to a side are written
    to the ledger together once its sends end (one transaction, not one per order), also
    when a send failed; the first failure is then raised. Exactly once still holds: each
    send follows its committed ``submitted``, and a rerun asks the broker about those.
    """
    outcomes: list[str] = []
    for side in ("sell", "buy"):
        batch = [i for i in intents if i.side == side]
        answers: list[tuple[str, BrokerOrder]] = []
        try:
            outcomes += _send_all(engine, settings, broker, batch, sleep, answers)
        finally:
            record_broker_states(engine, answers, source="broker")
    return outcomes


def _send_all(
    engine: sa.Engine,
    settings: Settings,
    broker: Broker,
    batch: list[OrderIntent],
    sleep: Callable[[float], None],
    answers: list[tuple[str, BrokerOrder]],
) -> list[str]:
    """:func:`_send` for each intent of ``batch``, from ``BROKER_CONCURRENCY`` threads."""
    if settings.broker_concurrency == 1 or len(batch) < 2:
        return [_send(engine, settings, broker, i, sleep, answers) for i in batch]
    with ThreadPoolExecutor(settings.broker_concurrency) as pool:
        futures = [pool.submit(_send, engine, settings, broker, i, sleep, answers) for i in batch]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
        return [f.result() for f in futures]


def send_order(
    engine: sa.Engine,
    settings: Settings,
    broker: Broker,
    intent: OrderIntent,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """One order, exactly once: ask the broker by client id, send only if it is unknown.

    Transient failures (429, 5xx, timeouts) are retried up to ``BROKER_MAX_ATTEMPTS`` times
    with exponential backoff, each retry asking the broker first; permanent ones (403, 422)
    dead-letter the order. The broker's answer is in the ledger when it returns ``sent``,
    ``recovered`` or ``dead_lettered``.
    """
    return send_orders(engine, settings, broker, [intent], sleep)[0]


def _send(
    engine: sa.Engine,
    settings: Settings,
    broker: Broker,
    intent: OrderIntent,
    sleep: Callable[[float], None],
    answers: list[tuple[str, BrokerOrder]],
) -> str:
    """:func:`send_order` without the ledger write of the broker's answer: it is appended
    to ``answers`` (client id, the broker's order) for the caller to record."""
    coid = intent.client_order_id
    policy, waited = BrokerBackoff.from_settings(settings), 0.0
    for attempt in range(1, settings.broker_max_attempts + 1):
        # A planned order was never sent: every send is preceded by the committed
        # 'submitted', so only then (or on a retry) can the broker know it — ask first.
        previous = _mark_submitted(engine, coid, attempt)
        if previous != ledger.PLANNED:
            known = broker.get_order_by_client_id(coid)
            if known is not None:
                answers.append((coid, known))
                return RECOVERED if attempt == 1 else SENT
            if previous not in (ledger.SUBMITTED, ledger.DEAD_LETTER):
                raise ReconciliationError(
                    f"{coid} is {previous} in the ledger but unknown to {broker.name}; "
                    "nothing is sent: reconcile and resolve it first"
                )
        checkpoint("before_send", coid)
        try:
            order = broker.submit_order(intent)
        except TransientBrokerError as exc:
            _note_error(engine, coid, str(exc))
            pause = policy.pause(attempt, exc.retry_after, waited)
            if attempt == settings.broker_max_attempts or pause is None:
                raise TransientBrokerError(
                    f"{coid}: broker failed {attempt} times ({exc}; waited {waited:.1f}s of "
                    f"BROKER_MAX_WAIT_SECONDS={policy.budget:g}); the order stays "
                    "'submitted' and a rerun resumes it (asking the broker first)",
                    exc.retry_after,
                ) from exc
            log.warning("send %s attempt=%d failed: %s; retry in %.2fs", coid, attempt, exc, pause)
            sleep(pause)
            waited += pause
            continue
        except PermanentBrokerError as exc:
            dead_letter(engine, broker.name, coid, exc, attempt)
            return DEAD_LETTERED
        checkpoint("after_send", coid)
        answers.append((coid, order))
        return SENT
    raise AssertionError("unreachable")


def _mark_submitted(engine: sa.Engine, coid: str, attempt: int) -> str:
    """Check the kill switch and commit ``submitted`` (and the attempt) before the broker is
    called, in one transaction; return the status the order had."""
    with engine.begin() as conn:
        row = orders.locked_for_send(conn, coid, KILL_SWITCH)
        if row.enabled:
            raise KillSwitchEngaged(
                f"kill switch is on since {row.updated_at} ({row.reason}); no order is sent. "
                "`mltrade kill-switch off` releases it"
            )
        previous = str(row.status)
        if previous not in (ledger.PLANNED, ledger.SUBMITTED, ledger.DEAD_LETTER):
            return previous  # the broker answered already (another run): just look
        detail = {"attempt": attempt}
        if previous == ledger.SUBMITTED:  # a resend: same state, one more attempt recorded
            orders.update(conn, coid, None, {"attempts": row.attempts + 1}, ("ledger", detail))
        else:
            ledger.transition(
                conn,
                coid,
                ledger.SUBMITTED,
                "ledger",
                detail,
                previous,
                attempts=row.attempts + 1,
            )
    return previous


def _note_error(engine: sa.Engine, coid: str, error: str) -> None:
    orders.set_last_error(engine, coid, redact(error)[:1000])


def _plan_row(engine: sa.Engine, plan: PlanRef) -> tuple[str, str, str, object]:
    row = plans.for_submission(engine, plan)
    if row is None:
        raise RiskLimitBreached(f"plan {plan} does not exist")
    return row.status, row.model_name, row.model_version, row.orders_frozen_at


def freeze_orders(conn: sa.Connection, plan: PlanRef, intents: list[OrderIntent]) -> None:
    """Store the plan's orders (on the caller's transaction: the one that approves it)."""
    orders.replace_frozen(conn, plan, intents)
    plans.mark_orders_frozen(conn, plan)


def frozen_orders(engine: sa.Engine, plan: PlanRef) -> list[OrderIntent]:
    """The orders frozen with the plan at approval, sells first."""
    return _intents(orders.frozen(engine, plan), plan)


def _record_intents(
    engine: sa.Engine,
    plan: PlanRef,
    intents: list[OrderIntent],
    broker: str,
    model_name: str,
    model_version: str,
) -> None:
    """Step 1: ledger rows for every intent, in one transaction, before any broker call.

    The plan becomes ``submitted`` in the same transaction: its intents are now frozen.
    """
    with engine.begin() as conn:
        orders.insert(
            conn, plan, intents, ledger.PLANNED, "ledger", (broker, model_name, model_version)
        )
        plan_state.move(conn, plan, {plan_state.APPROVED}, plan_state.SUBMITTED)


def _unsent(engine: sa.Engine, plan: PlanRef) -> list[OrderIntent]:
    """Ledger rows of the plan the broker has not confirmed yet (``planned``, ``submitted``)."""
    return _intents(orders.with_status(engine, plan, (ledger.PLANNED, ledger.SUBMITTED)), plan)


def _intents(rows: list[sa.Row], plan: PlanRef) -> list[OrderIntent]:
    return [
        OrderIntent(r.client_order_id, r.symbol, r.side, Decimal(r.qty), plan.session_date)
        for r in rows
    ]


def retry_dead_letter(
    engine: sa.Engine,
    settings: Settings,
    broker: Broker,
    coid: str,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send a dead-lettered order again, exactly once (the broker is asked first).

    Returns ``sent``, ``recovered`` (the broker had it after all) or ``dead_lettered`` (refused
    again; the dead-letter row is updated).
    """
    status = dead_letter_status(engine, coid)
    if status != ledger.DEAD_LETTER:
        raise BrokerError(f"{coid} is {status} now, not dead-lettered: nothing to retry")
    assert_trading_allowed(engine)
    assert_reconciled(engine, broker.name)
    row = orders.read(engine, coid)
    if row.broker != broker.name:
        raise BrokerError(f"{coid} belongs to broker {row.broker}, not {broker.name}")
    intent = OrderIntent(coid, row.symbol, row.side, Decimal(row.qty), row.session_date)
    outcome = send_order(engine, settings, broker, intent, sleep)
    orders.mark_retried(engine, coid, ledger.DEAD_LETTER)
    log.info("dead letter retried client_order_id=%s outcome=%s", coid, outcome)
    return outcome
