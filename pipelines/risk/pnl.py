"""Realized P&L from the warehouse: the equity curve the daily-loss and drawdown limits read.

Equity at the close of session d = initial cash − cost of every fill through d (buys
positive, sells negative, commissions added) + the shares held after those fills valued at
d's close. Fills are dated by their ``filled_at`` in New York time. Money is USD; the curve
has one point per session with a bar between the first fill's session and ``as_of``
(inclusive); with no fills it is empty.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa


def equity_curve(engine: sa.Engine, initial_cash: float, as_of: date) -> pd.Series:
    """Equity (USD) per session through ``as_of``, from fills and closes."""
    with engine.connect() as conn:
        fills = pd.read_sql(
            sa.text(
                "SELECT symbol, side, qty::float8 AS qty, price, commission, "
                "(filled_at AT TIME ZONE 'America/New_York')::date AS session_date "
                "FROM fills WHERE (filled_at AT TIME ZONE 'America/New_York')::date <= :d"
            ),
            conn,
            params={"d": as_of},
        )
        if fills.empty:
            return pd.Series(dtype=float, name="equity")
        index = _sessions(conn, sorted(set(fills.symbol)), fills.session_date.min(), as_of)
        closes = _held_closes(conn, fills, as_of)
    price = closes.pivot(index="session_date", columns="symbol", values="close")
    price = price.reindex(index=index, columns=sorted(set(fills.symbol))).ffill()
    signed = np.where(fills.side == "buy", 1.0, -1.0) * fills.qty
    fills = fills.assign(shares=signed, cash=-signed * fills.price - fills.commission)
    shares = (
        fills.pivot_table(index="session_date", columns="symbol", values="shares", aggfunc="sum")
        .reindex(price.index, fill_value=0.0)
        .fillna(0.0)
        .cumsum()
    )
    cash = fills.groupby("session_date").cash.sum().reindex(price.index, fill_value=0.0).cumsum()
    held = (shares * price[shares.columns].fillna(0.0)).sum(axis=1)
    return (initial_cash + cash + held).rename("equity")


def _sessions(conn: sa.Connection, symbols: list[str], start: date, end: date) -> pd.Index:
    """The sessions in ``[start, end]`` where any of ``symbols`` has a bar (the curve's points).

    A skip scan: one probe of the ``session_date`` index per session, not a read of every
    bar in the window (which made each call grow with sessions × symbols)."""
    dates = conn.execute(
        sa.text("""
            WITH RECURSIVE d(x) AS (
                SELECT min(session_date) FROM bars WHERE session_date BETWEEN :a AND :b
                UNION ALL
                SELECT (SELECT min(session_date) FROM bars
                        WHERE session_date > d.x AND session_date <= :b)
                FROM d WHERE d.x IS NOT NULL)
            SELECT x FROM d WHERE x IS NOT NULL AND EXISTS (
                SELECT 1 FROM bars WHERE session_date = d.x AND symbol = ANY(:s))
            ORDER BY x"""),
        {"a": start, "b": end, "s": symbols},
    ).scalars()
    return pd.Index(list(dates), name="session_date")


def _held_closes(conn: sa.Connection, fills: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The closes a held share is valued at: per symbol, from its first fill's session to the
    session it went flat (or ``as_of``), plus its last close before that first session when
    it has no bar on it (the curve carries a close forward, but not from before the first
    fill of all, where it starts). A flat symbol adds 0 to the curve, so the curve is the same
    as from every close of every symbol ever traded."""
    first, last = _held_spans(fills, as_of)
    closes = pd.read_sql(
        sa.text(
            "SELECT b.symbol, b.session_date, b.close "
            "FROM unnest(CAST(:s AS text[]), CAST(:a AS date[]), CAST(:b AS date[])) "
            "AS w(symbol, a, b) JOIN bars b ON b.symbol = w.symbol "
            "AND b.session_date BETWEEN w.a AND w.b "
            # The same window on ts (a day wider each side) lets the (symbol, ts) key and
            # the ts partitions do the work; session_date alone is not indexed with symbol.
            "AND b.ts >= CAST(w.a - 1 AS timestamp) AT TIME ZONE 'UTC' "
            "AND b.ts < CAST(w.b + 2 AS timestamp) AT TIME ZONE 'UTC'"
        ),
        conn,
        params={"s": list(first.index), "a": list(first), "b": list(last)},
    )
    starts = set(zip(closes.symbol, closes.session_date, strict=True))
    missing = [s for s, d in first.items() if (s, d) not in starts]
    if missing:  # rare: a first fill on a session without the symbol's bar
        before = pd.read_sql(
            sa.text(
                "SELECT DISTINCT ON (b.symbol) b.symbol, b.session_date, b.close "
                "FROM unnest(CAST(:s AS text[]), CAST(:a AS date[])) AS w(symbol, a) "
                "JOIN bars b ON b.symbol = w.symbol AND b.session_date < w.a "
                "AND b.session_date >= :start ORDER BY b.symbol, b.session_date DESC"
            ),
            conn,
            params={
                "s": missing,
                "a": [first[s] for s in missing],
                "start": fills.session_date.min(),
            },
        )
        closes = pd.concat([before, closes], ignore_index=True)
    return closes


def _held_spans(fills: pd.DataFrame, as_of: date) -> tuple[pd.Series, pd.Series]:
    """Per symbol: its first fill's session, and the last session it may be held at (the
    session its shares went back to zero, or ``as_of`` while any remain)."""
    signed = np.where(fills.side == "buy", 1.0, -1.0) * fills.qty
    net = (
        fills.assign(shares=signed)
        .groupby(["symbol", "session_date"])
        .shares.sum()
        .groupby(level="symbol")
        .cumsum()
    )
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
