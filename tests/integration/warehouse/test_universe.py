"""Universe membership over time, derived from the bars the warehouse holds."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import WarehouseError
from pipelines.sources.sample import SampleSource
from pipelines.warehouse import universe
from pipelines.warehouse.bars import upsert_bars
from pipelines.warehouse.universe import Membership

LEFT_AFTER = date(2010, 3, 31)  # XOM's last session in this test


@pytest.fixture
def bars_with_a_leaver(warehouse: sa.Engine) -> sa.Engine:
    """Real sample bars of IBM (all of 2010-01..06) and XOM (only until LEFT_AFTER)."""
    frame = SampleSource().fetch_daily_bars(date(2010, 1, 4), date(2010, 6, 30), ["IBM", "XOM"])
    frame = frame[(frame["symbol"] == "IBM") | (frame["session_date"] <= LEFT_AFTER)]
    with warehouse.begin() as conn:
        upsert_bars(conn, frame, "sample")
    return warehouse


def test_a_symbol_that_leaves_is_no_member_after(bars_with_a_leaver: sa.Engine) -> None:
    with bars_with_a_leaver.begin() as conn:
        assert universe.build_from_bars(conn, "sample") == 2
        assert universe.members(conn, LEFT_AFTER) == ["IBM", "XOM"]
        assert universe.members(conn, date(2010, 4, 1)) == ["IBM"]
        assert universe.members(conn, date(2009, 12, 31)) == []
        rows = pd.read_sql(sa.text("SELECT * FROM universe ORDER BY symbol"), conn)
    assert rows["valid_from"].tolist() == [date(2010, 1, 4), date(2010, 1, 4)]
    assert rows["valid_to"].isna().tolist() == [True, False], "IBM is still a member"
    assert rows.loc[1, "valid_to"] == LEFT_AFTER


def test_rebuild_is_idempotent(bars_with_a_leaver: sa.Engine) -> None:
    query = "SELECT symbol, valid_from, valid_to, source FROM universe ORDER BY 1, 2"
    with bars_with_a_leaver.begin() as conn:
        universe.build_from_bars(conn, "sample")
        first = pd.read_sql(sa.text(query), conn)
    with bars_with_a_leaver.begin() as conn:
        universe.build_from_bars(conn, "sample")
        again = pd.read_sql(sa.text(query), conn)
    pd.testing.assert_frame_equal(first, again)


def test_upsert_rejoin_and_overlap(warehouse: sa.Engine) -> None:
    stint = Membership("GM", date(2000, 1, 3), date(2009, 6, 1), "vendor")
    back = Membership("GM", date(2010, 11, 18), None, "vendor")
    with warehouse.begin() as conn:
        assert universe.upsert(conn, [stint, back]) == 2
        assert universe.upsert(conn, [stint, back]) == 0  # unchanged: not touched
        assert universe.members(conn, date(2010, 1, 4)) == []
        assert universe.members(conn, date(2011, 1, 3)) == ["GM"]
        with pytest.raises(WarehouseError, match="overlaps an existing interval"):
            universe.upsert(conn, [Membership("GM", date(2009, 1, 2), None, "other")])
        with pytest.raises(WarehouseError, match="before valid_from"):
            universe.upsert(conn, [Membership("F", date(2009, 1, 2), date(2008, 1, 2), "x")])
        # the refused calls left the transaction usable and the table unchanged
        assert conn.execute(sa.text("SELECT count(*) FROM universe")).scalar_one() == 2
