"""The realized equity curve with stored marks equals a valuation from scratch, always."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import calendar
from pipelines.risk import pnl
from tests.integration.test_risk_gate import AS_OF, SYMBOLS, _fill

INITIAL = 1_000_000.0


@pytest.fixture
def market(warehouse: sa.Engine, load_sample_bars) -> sa.Engine:
    load_sample_bars(SYMBOLS)
    return warehouse


def _reference(engine: sa.Engine, initial: float, as_of: date) -> pd.Series:
    """Equity at each session from the first fill's on: initial cash, every fill's cash flow
    through the session, each holding at its last close — loop by loop, no marks."""
    with engine.connect() as conn:
        fills = conn.execute(sa.text(
            "SELECT symbol, side, qty::float8 AS qty, price, commission, "
            "(filled_at AT TIME ZONE 'America/New_York')::date AS d FROM fills")).all()
        bars = pd.read_sql(sa.text("SELECT symbol, session_date, close FROM bars "
                                   "WHERE session_date <= :d"), conn, params={"d": as_of})
    closes = bars.pivot(index="session_date", columns="symbol", values="close").sort_index()
    traded = sorted({f.symbol for f in fills})
    first = min(f.d for f in fills)
    curve = {}
    for day in closes.index[(closes.index >= first)]:
        if closes.loc[day, traded].isna().all():
            continue
        done = [f for f in fills if f.d <= day]
        cash = sum(-(f.qty if f.side == "buy" else -f.qty) * f.price - f.commission for f in done)
        value = 0.0
        for symbol in traded:
            shares = sum(f.qty if f.side == "buy" else -f.qty for f in done if f.symbol == symbol)
            if shares:
                value += shares * closes.loc[:day, symbol].dropna().iloc[-1]
        curve[day] = initial + cash + value
    return pd.Series(curve, dtype=float)


def _assert_full(engine: sa.Engine, as_of: date, initial: float = INITIAL) -> pd.Series:
    curve = pnl.equity_curve(engine, initial, as_of)
    expected = _reference(engine, initial, as_of)
    assert list(curve.index) == list(expected.index)
    assert curve.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    return curve


def test_session_by_session_the_curve_equals_the_valuation_from_scratch(market) -> None:
    trades = {
        date(2010, 8, 2): [("a", "AAPL", "buy", 1000, 260.0), ("b", "XOM", "buy", 800, 61.0)],
        date(2010, 8, 5): [("c", "KO", "buy", 2000, 55.0)],
        date(2010, 8, 9): [("d", "AAPL", "sell", 400, 262.0), ("e", "XOM", "sell", 800, 60.0)],
        date(2010, 8, 10): [("g", "MSFT", "buy", 500, 24.0)],
        date(2010, 8, 11): [("f", "XOM", "buy", 300, 59.0)],
    }
    with market.begin() as conn:  # held through two missing bars, bought on a missing bar
        conn.execute(sa.text("DELETE FROM bars WHERE (session_date = '2010-08-10' "
                             "AND symbol IN ('AAPL', 'MSFT')) "
                             "OR (session_date = '2010-08-11' AND symbol = 'AAPL')"))
    for day in calendar.sessions(date(2010, 8, 2), AS_OF):
        with market.begin() as conn:
            for coid, symbol, side, qty, price in trades.get(day, []):
                _fill(conn, coid, symbol, side, qty, price, day)
        _assert_full(market, day)  # each call values only the session after the last mark
    with market.connect() as conn:
        marks = conn.execute(sa.text("SELECT count(*) FROM equity_marks")).scalar_one()
    assert marks == len(calendar.sessions(date(2010, 8, 2), AS_OF))


def test_a_mark_is_reused_until_what_it_rests_on_changes(market) -> None:
    d1, mid = date(2010, 8, 2), date(2010, 8, 6)
    with market.begin() as conn:
        _fill(conn, "a", "AAPL", "buy", 1000, 260.0, d1)
    curve = _assert_full(market, AS_OF)

    def tamper() -> None:  # a stored point changed by hand: visible only while it is reused
        with market.begin() as conn:
            conn.execute(sa.text("UPDATE equity_marks SET equity = equity + 1 "
                                 "WHERE session_date = :d"), {"d": mid})

    tamper()
    assert pnl.equity_curve(market, INITIAL, AS_OF)[mid] == curve[mid] + 1  # reused
    with market.begin() as conn:  # a fill dated before the mark arrives late
        _fill(conn, "late", "KO", "buy", 100, 55.0, date(2010, 8, 4))
    _assert_full(market, AS_OF)

    tamper()
    with market.begin() as conn:  # a bar corrected by a re-ingest (as upsert_bars writes it)
        conn.execute(sa.text("UPDATE bars SET close = close * 1.01, ingested_at = now() "
                             "WHERE symbol = 'AAPL' AND session_date = :d"), {"d": d1})
    _assert_full(market, AS_OF)

    tamper()
    _assert_full(market, AS_OF, initial=2 * INITIAL)  # another initial cash
