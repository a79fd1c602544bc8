"""A plan's life: its statuses, the only moves allowed between them, and the plan lock.

Statuses (``plans.status``)::

    proposed ─▶ approved ─▶ submitted
       │  ▲        │
       ▼  │        ▼
     blocked ─▶ superseded        (by `mltrade replan` only; never once submitted)

``proposed`` is written by the planner. The risk gate moves it to ``approved`` (and freezes
its orders in ``plan_orders`` in the same transaction) or ``blocked``; the gate may decide a
blocked plan again (a released kill switch, new data), but never an approved one. Submission
moves ``approved`` to ``submitted`` in the transaction that writes the ledger rows. An
explicit re-plan moves the latest version to ``superseded`` and writes version + 1.

Every move is ``UPDATE plans ... WHERE status = ANY(expected)`` with the row count checked
(:func:`pipelines.warehouse.plans.move_status`): a run whose view of the plan is stale fails
with :class:`PlanConflict` and changes nothing.

The plan lock (:func:`plan_lock`) is a PostgreSQL session advisory lock on
(strategy, session_date) (:mod:`pipelines.warehouse.locks`): one rebalance, gate or submission
of a session at a time across every process (CLI, Airflow workers), released when the holder
ends or dies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import sqlalchemy as sa

from pipelines.errors import PlanConflict
from pipelines.warehouse import locks, plans

PROPOSED, APPROVED, BLOCKED, SUBMITTED, SUPERSEDED = (
    "proposed",
    "approved",
    "blocked",
    "submitted",
    "superseded",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    PROPOSED: frozenset({APPROVED, BLOCKED, SUPERSEDED}),
    BLOCKED: frozenset({APPROVED, BLOCKED, SUPERSEDED}),
    APPROVED: frozenset({SUBMITTED, SUPERSEDED}),
    SUBMITTED: frozenset(),
    SUPERSEDED: frozenset(),
}
LOCK_CLASS = 0x6D6C74  # 'mlt': the advisory-lock namespace of plan locks


def move(
    conn: sa.Connection,
    plan: plans.PlanRef,
    expected: Iterable[str],
    new: str,
    **columns: Any,
) -> None:
    """Move ``plan`` from one of ``expected`` to ``new``, setting ``columns`` too, on the
    caller's transaction.

    Raises :class:`PlanConflict` when the plan is no longer in an expected status (another run
    moved it) and ``ValueError`` for a move the state machine forbids (a bug, not a race).
    """
    expected = sorted(set(expected))
    for status in expected:
        if new not in TRANSITIONS[status]:
            raise ValueError(f"plan status {status} -> {new} is not an allowed transition")
    if not plans.move_status(conn, plan, expected, new, columns):
        now = plans.status(conn, plan)
        raise PlanConflict(
            f"plan {plan.strategy} {plan.session_date} v{plan.plan_version} is "
            f"{now or 'missing'}, not {'/'.join(expected)}: another run moved it first; this "
            "run changed nothing"
        )


_held: dict[tuple[int, str, str, date], int] = {}
_held_guard = threading.Lock()


@contextmanager
def plan_lock(engine: sa.Engine, strategy: str, session_date: date, what: str) -> Iterator[None]:
    """Hold the session's plan lock for the block, or raise :class:`PlanConflict` at once.

    Re-entrant within one thread (a rebalance holds it and its submit step takes it again).
    """
    key = (threading.get_ident(), str(engine.url), strategy, session_date)
    with _held_guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    lock_key = f"{strategy}|{session_date.isoformat()}"
    conn = engine.connect()
    try:
        got = locks.try_lock(conn, LOCK_CLASS, lock_key)
        conn.commit()  # the lock is the session's; leave no transaction open
        if not got:
            raise PlanConflict(
                f"another run holds the {strategy} plan of {session_date} right now; this "
                f"{what} changed nothing and sent no order: let that run finish, then rerun "
                "to see its result"
            )
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            locks.unlock(conn, LOCK_CLASS, lock_key)
            conn.commit()
    finally:
        conn.close()
