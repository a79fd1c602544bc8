"""The planner's trailing returns read only the window's sessions, and equal a read of the
whole history, through gaps in the data."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.portfolio.risk_model import returns_from_closes, trailing_returns

SYMBOLS = ["IBM", "JPM", "KO", "PG", "XOM"]
AS_OF = date(2010, 8, 13)


@pytest.fixture
def market(warehouse: sa.Engine, load_sample_bars) -> sa.Engine:
    load_sample_bars(SYMBOLS)
    return warehouse


def _from_all_bars(engine: sa.Engine, window: int) -> pd.DataFrame:
    """The reference: every stored close up to AS_OF through pandas, then the last window."""
    with engine.connect() as conn:
        bars = pd.read_sql(
            sa.text("SELECT symbol, session_date, close FROM bars WHERE session_date <= :d"),
            conn,
            params={"d": AS_OF},
        )
    closes = bars.pivot(index="session_date", columns="symbol", values="close").sort_index()
    return returns_from_closes(closes[SYMBOLS], window)


def _delete(engine: sa.Engine, where: str, **params: object) -> None:
    with engine.begin() as conn:
        assert conn.execute(sa.text(f"DELETE FROM bars WHERE {where}"), params).rowcount > 0


@pytest.mark.parametrize("window", [20, 120])
def test_the_window_equals_the_one_cut_from_all_closes_through_gaps(market, window) -> None:
    full = trailing_returns(market, AS_OF, SYMBOLS, window)
    assert full.shape == (window, len(SYMBOLS))
    pd.testing.assert_frame_equal(full, _from_all_bars(market, window), check_names=False)

    # a session missing for every symbol: the window reaches one session further back
    _delete(market, "session_date = :d", d=date(2010, 8, 4))
    gap = trailing_returns(market, AS_OF, SYMBOLS, window)
    assert len(gap) == window and gap.index[0] < full.index[0]
    pd.testing.assert_frame_equal(gap, _from_all_bars(market, window), check_names=False)

    # one symbol missing a close inside the window is dropped, the others kept
    _delete(market, "symbol = 'KO' AND session_date = :d", d=date(2010, 8, 10))
    dropped = trailing_returns(market, AS_OF, SYMBOLS, window)
    assert list(dropped.columns) == ["IBM", "JPM", "PG", "XOM"]
    pd.testing.assert_frame_equal(
        dropped, _from_all_bars(market, window).dropna(axis=1), check_names=False
    )
