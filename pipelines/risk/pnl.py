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
        closes = pd.read_sql(
            sa.text(
                "SELECT symbol, session_date, close FROM bars WHERE symbol = ANY(:s) "
                "AND session_date BETWEEN :a AND :b"
            ),
            conn,
            params={"s": sorted(set(fills.symbol)), "a": fills.session_date.min(), "b": as_of},
        )
    price = closes.pivot(index="session_date", columns="symbol", values="close").sort_index()
    price = price.ffill()
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


def daily_loss_and_drawdown(equity: pd.Series, initial_cash: float) -> tuple[float, float]:
    """Last session's loss and the drawdown from the peak, both positive fractions of equity.

    The initial cash counts as the point before the first session (and as a peak).
    """
    curve = np.concatenate([[initial_cash], equity.to_numpy(dtype=float)])
    loss = max(0.0, 1 - curve[-1] / curve[-2]) if len(curve) >= 2 else 0.0
    drawdown = max(0.0, 1 - curve[-1] / curve.max())
    return float(loss), float(drawdown)
