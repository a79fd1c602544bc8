"""The money-path guard: one function every money-moving entry point calls.

:func:`require_trading_allowed` is called before a plan is made and again right before its
orders are sent — by the Airflow DAG (through :mod:`pipelines.jobs`), by ``jobs.rebalance``
and the CLI, and by the backtest — so each refuses for the same reasons, in the same words.
It checks, cheapest first, and raises the first failure (a :class:`TradingBlocked`
subclass, or :class:`ReconciliationError`); it writes nothing:

1. ``session_date`` is an NYSE session (no weekends, no holidays);
2. the kill switch is off;
3. the data is fresh: ``bars`` holds the previous session's closes, which the plan trades on;
4. the broker's latest reconciliation (if any) found no difference.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines import calendar
from pipelines.controls import assert_trading_allowed
from pipelines.errors import NotATradingSession, ReconciliationError, StaleMarketData
from pipelines.warehouse import bars, reconciliations


def require_trading_allowed(engine: sa.Engine, session_date: date, broker: str) -> None:
    """Raise unless orders for ``session_date`` may be planned and sent through ``broker``
    (its name: ``alpaca`` | ``simulated``). See the module docstring for the checks."""
    require_session(session_date)
    assert_trading_allowed(engine)
    require_fresh_bars(engine, session_date)
    assert_reconciled(engine, broker)


def require_session(session_date: date) -> None:
    """Raise :class:`NotATradingSession` unless ``session_date`` is an NYSE session."""
    if not calendar.is_session(session_date):
        following = calendar.next_session(session_date)
        raise NotATradingSession(
            f"{session_date} ({session_date:%A}) is not an NYSE session: nothing was planned "
            f"or sent; the next session is {following}"
        )


def require_fresh_bars(engine: sa.Engine, session_date: date) -> None:
    """Raise :class:`StaleMarketData` unless ``bars`` holds the session before
    ``session_date`` (the closes a rebalance for ``session_date`` plans and sizes on)."""
    needed = calendar.previous_session(session_date)
    with engine.connect() as conn:
        newest = bars.latest_session(conn, needed)
    if newest != needed:
        raise StaleMarketData(
            f"no bars for {needed}, the session before {session_date} (newest: "
            f"{newest or 'none'}): load them first (`mltrade ingest --start {needed} "
            f"--end {needed}`); nothing was planned or sent"
        )


def assert_reconciled(engine: sa.Engine, broker: str) -> None:
    """Refuse to trade while the broker's latest reconciliation found differences."""
    row = reconciliations.latest(engine, broker)
    if row is not None and not row.ok:
        raise ReconciliationError(
            f"the last reconciliation with {broker} ({row.at}) found differences; trading is "
            f"blocked until they are resolved and `mltrade reconcile` passes: "
            + "; ".join(row.problems[:5])
        )
