"""Realized P&L from the warehouse: the equity curve the daily-loss and drawdown limits read.

Equity at the close of session d = initial cash − cost of every fill through d (buys
positive, sells negative, commissions added) + the shares held after those fills valued at
d's close. Fills are dated by their ``filled_at`` in New York time. Money is USD; the curve
has one point per session with a bar between the first fill's session and ``as_of``
(inclusive); with no fills it is empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import bars, equity_marks, orders, prices

log = logging.getLogger(__name__)


def equity_curve(engine: sa.Engine, initial_cash: float, as_of: date) -> pd.Series:
    """Equity (USD) per session through ``as_of``, from fills and closes.

    Points valued before are read back from ``equity_marks`` while they are valid (the same
    initial cash, the same fills on or before their session, no bar written since); only the
    sessions after the last valid one are valued, from the holdings and cash at that mark and
    the fills since, and stored for the next call. A mark is an earlier call's output for the
    same inputs, so the curve is the one a full valuation gives.
    """
    with engine.connect() as conn:
        flows = _Flows.of(orders.fill_flows(conn, as_of))
        if not flows.days:
            return pd.Series(dtype=float, name="equity")
        bars_version = bars.last_ingested_at(conn)
        kept = _valid_marks(conn, initial_cash, as_of, flows, bars_version)
        after = kept.index[-1] if len(kept) else None
        if after == as_of:  # valued through as_of already (the gate's second look)
            return kept.rename("equity")
        fills = _fills_since(conn, after, as_of)
        start = flows.days[0] if after is None else after + timedelta(days=1)
        symbols = orders.filled_symbols(conn, as_of)
        index = pd.Index(bars.sessions_with_bars(conn, symbols, start, as_of), name="session_date")
        closes = _held_closes(conn, fills, as_of, after, flows.days[0]) if len(fills) else None
    opening_cash = initial_cash if after is None else initial_cash + flows.through([after])[1][0]
    valued = _valued(fills, closes, index, opening_cash)
    if len(valued) and bars_version is not None:
        _store_marks(engine, valued, flows, initial_cash, bars_version, after, as_of)
    return pd.concat([kept, valued]).rename("equity")


def _fills_since(conn: sa.Connection, after: date | None, as_of: date) -> pd.DataFrame:
    """The fills after ``after`` through ``as_of`` (symbol, session_date, shares, cash), led
    by the holdings at ``after`` as fills dated ``after`` that moved no cash."""
    fills = orders.fills_between(conn, after, as_of)
    if after is None:
        return fills
    held = orders.holdings_through(conn, after)
    opening = pd.DataFrame(
        {"symbol": held.index, "session_date": after, "shares": held.to_numpy(), "cash": 0.0}
    )
    return pd.concat([opening, fills], ignore_index=True) if len(fills) else opening


@dataclass(frozen=True)
class _Flows:
    """Per session with fills, ascending: the fills so far and their cash so far (USD)."""

    days: list[date]
    fills: np.ndarray
    cash: np.ndarray

    @classmethod
    def of(cls, per_session: pd.DataFrame) -> _Flows:
        """From ``orders.fill_flows``: one row per session, oldest first."""
        return cls(
            list(per_session.session_date),
            per_session.fills.to_numpy(dtype=np.int64).cumsum(),
            per_session.cash.to_numpy(dtype=float).cumsum(),
        )

    def through(self, days: list[date]) -> tuple[np.ndarray, np.ndarray]:
        """The count and the cash of the fills dated on or before each of ``days``."""
        i = np.searchsorted(np.array(self.days, dtype=object), np.array(days, dtype=object),
                            side="right")  # fmt: skip
        fills = np.concatenate([[0], self.fills])[i]
        cash = np.concatenate([[0.0], self.cash])[i]
        return fills, cash


def _valid_marks(
    conn: sa.Connection,
    initial_cash: float,
    as_of: date,
    flows: _Flows,
    bars_version: object,
) -> pd.Series:
    """The stored points through ``as_of`` that still hold, up to the first that does not."""
    marks = equity_marks.through(conn, as_of)
    days = [m.session_date for m in marks]
    fills, cash = flows.through(days)
    same_inputs = [(m.initial_cash, m.bars_version) == (initial_cash, bars_version) for m in marks]
    holds = (
        np.array(same_inputs, dtype=bool)
        & (np.array([m.fills for m in marks], dtype=np.int64) == fills)
        & np.isclose(np.array([m.fills_cash for m in marks], dtype=float), cash,
                     rtol=1e-12, atol=1e-6)  # fmt: skip
    )
    valid = len(marks) if holds.all() else int(np.argmin(holds))
    kept = pd.Series([m.equity for m in marks[:valid]], index=days[:valid], dtype=float)
    return kept.rename("equity").rename_axis("session_date")


def _valued(
    fills: pd.DataFrame, closes: pd.DataFrame | None, index: pd.Index, initial_cash: float
) -> pd.Series:
    """Equity at each session of ``index``: the cash and shares of every fill on or before
    it, the shares at the last close known then (``closes`` may start before ``index``; None
    when there are no fills: a flat book keeps its cash)."""
    if index.empty:
        return pd.Series(dtype=float, name="equity")
    if closes is None:
        return pd.Series(initial_cash, index=index, dtype=float, name="equity")
    symbols = sorted(set(fills.symbol))
    price = closes.pivot(index="session_date", columns="symbol", values="close")
    days = index.union(price.index)
    price = price.reindex(index=days, columns=symbols).ffill().reindex(index)
    days = index.union(pd.Index(fills.session_date.unique()))
    shares = (
        fills.pivot_table(index="session_date", columns="symbol", values="shares", aggfunc="sum")
        .reindex(days, fill_value=0.0)
        .fillna(0.0)
        .cumsum()
        .reindex(index)
    )
    cash = fills.groupby("session_date").cash.sum().reindex(days, fill_value=0.0).cumsum()
    held = (shares * price[shares.columns].fillna(0.0)).sum(axis=1)
    return (initial_cash + cash.reindex(index) + held).rename("equity")


def _store_marks(
    engine: sa.Engine,
    valued: pd.Series,
    flows: _Flows,
    initial_cash: float,
    bars_version: object,
    after: date | None,
    as_of: date,
) -> None:
    """Replace the marks after ``after`` through ``as_of`` by ``valued``. Marks only save
    work: when two callers race and one's write fails, its curve is still returned."""
    counts, cash = flows.through(list(valued.index))
    marks = [
        {"session_date": day, "equity": float(value), "initial_cash": initial_cash,
         "fills": int(n), "fills_cash": float(c), "bars_version": bars_version}
        for (day, value), n, c in zip(valued.items(), counts, cash, strict=True)
    ]  # fmt: skip
    try:
        equity_marks.replace(engine, after, as_of, marks)
    except sa.exc.DBAPIError as exc:
        log.warning("equity marks not stored (the curve is unaffected): %s", exc)


def _held_closes(
    conn: sa.Connection, fills: pd.DataFrame, as_of: date, after: date | None, first_fill: date
) -> pd.DataFrame:
    """The closes a held share is valued at after ``after`` (from the first fill when None):
    per symbol, from its first fill's session (or the day after ``after``) to the session it
    went flat (or ``as_of``), plus its last close before that start when it has no bar on it
    (the curve carries a close forward, but not from before ``first_fill``, the first fill of
    all, where it starts). A flat symbol adds 0 to the curve, so the curve is the same as from
    every close of every symbol ever traded."""
    first, last = _held_spans(fills, as_of)
    if after is not None:
        first, last = first.clip(lower=after + timedelta(days=1))[last > after], last[last > after]
    closes = bars.closes_in_spans(conn, first, last)
    starts = set(zip(closes.symbol, closes.session_date, strict=True))
    missing = {s: d for s, d in first.items() if (s, d) not in starts}
    if missing:  # no bar where its span starts (a first fill's session, a window's first day)
        before = prices.last_closes_before(conn, missing, first_fill)
        closes = pd.concat([before, closes], ignore_index=True)
    return closes


def _held_spans(fills: pd.DataFrame, as_of: date) -> tuple[pd.Series, pd.Series]:
    """Per symbol: its first fill's session, and the last session it may be held at (the
    session its shares went back to zero, or ``as_of`` while any remain)."""
    net = fills.groupby(["symbol", "session_date"]).shares.sum().groupby(level="symbol").cumsum()
    sessions = net.reset_index().groupby("symbol").session_date
    final = net.groupby(level="symbol").last()
    return sessions.min(), sessions.max().where(final == 0, as_of)


def daily_loss_and_drawdown(equity: pd.Series, initial_cash: float) -> tuple[float, float]:
    """Last session's loss and the drawdown from the peak, both positive fractions of equity.

    The initial cash counts as the point before the first session (and as a peak).
    """
    curve = np.concatenate([[initial_cash], equity.to_numpy(dtype=float)])
    loss = max(0.0, 1 - curve[-1] / curve[-2]) if len(curve) >= 2 else 0.0
    drawdown = max(0.0, 1 - curve[-1] / curve.max())
    return float(loss), float(drawdown)
