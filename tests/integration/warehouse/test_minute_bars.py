"""``minute_bars`` (monthly partitions on plain PostgreSQL) and the daily view derived from it."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import WarehouseError
from pipelines.warehouse import partitions


def _minutes(day: str, closes: list[float], symbol: str = "IBM") -> list[dict]:
    """Minute bars from 14:31 UTC (09:31 New York in winter), one per close given."""
    start = pd.Timestamp(f"{day} 14:31", tz="UTC")
    return [
        {
            "s": symbol,
            "ts": start + pd.Timedelta(minutes=i),
            "o": c - 0.1,
            "h": c + 0.2,
            "l": c - 0.3,
            "c": c,
            "v": 100.0 * (i + 1),
        }
        for i, c in enumerate(closes)
    ]


def _insert(conn: sa.Connection, rows: list[dict]) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO minute_bars (symbol, ts, open, high, low, close, volume, source) "
            "VALUES (:s, :ts, :o, :h, :l, :c, :v, 'test')"
        ),
        rows,
    )


def test_daily_from_minute_and_monthly_partitions(warehouse: sa.Engine) -> None:
    with warehouse.begin() as conn:
        if partitions.backend(conn, "minute_bars") == "partitioned":
            partitions.ensure_partitions(conn, "minute_bars", date(2010, 1, 29), date(2010, 2, 1))
            names = {p.name for p in partitions.list_partitions(conn, "minute_bars")}
            assert {"minute_bars_m2010_01", "minute_bars_m2010_02"} <= names  # some may exist
        _insert(conn, _minutes("2010-01-29", [10.0, 12.0, 11.0]))
        _insert(conn, _minutes("2010-02-01", [20.0, 19.0]))
        if partitions.backend(conn, "minute_bars") == "partitioned":
            where = conn.execute(
                sa.text("SELECT DISTINCT tableoid::regclass::text FROM minute_bars ORDER BY 1")
            ).scalars()
            assert list(where) == ["minute_bars_m2010_01", "minute_bars_m2010_02"]
        daily = pd.read_sql(sa.text("SELECT * FROM daily_from_minute ORDER BY day"), conn)
    assert daily["day"].dt.date.tolist() == [date(2010, 1, 29), date(2010, 2, 1)]
    assert daily["open"].tolist() == pytest.approx([9.9, 19.9])  # first minute's open
    assert daily["high"].tolist() == pytest.approx([12.2, 20.2])
    assert daily["low"].tolist() == pytest.approx([9.7, 18.7])
    assert daily["close"].tolist() == pytest.approx([11.0, 19.0])  # last minute's close
    assert daily["volume"].tolist() == [600.0, 300.0]
    assert daily["minutes"].tolist() == [3, 2]


def test_minute_retention_may_not_reach_the_aggregate_window(warehouse: sa.Engine) -> None:
    with warehouse.begin() as conn:
        with pytest.raises(WarehouseError, match="refresh window of daily_from_minute"):
            partitions.drop_expired_partitions(conn, "minute_bars", date(2010, 6, 1), 30)
        if partitions.backend(conn, "minute_bars") != "partitioned":
            return
        for part in partitions.list_partitions(conn, "minute_bars"):
            conn.exec_driver_sql(f'DROP TABLE "{part.name}"')
        partitions.ensure_partitions(conn, "minute_bars", date(2010, 1, 1), date(2010, 6, 30))
        _insert(conn, _minutes("2010-02-01", [20.0]) + _minutes("2010-05-03", [21.0]))
        # as of 2010-06-01 keeping 31 days: cutoff 2010-05-01, so January to April go
        dropped = partitions.drop_expired_partitions(conn, "minute_bars", date(2010, 6, 1), 31)
        left = (
            conn.execute(sa.text("SELECT (ts AT TIME ZONE 'UTC')::date FROM minute_bars"))
            .scalars()
            .all()
        )
    assert dropped == [f"minute_bars_m2010_0{m}" for m in (1, 2, 3, 4)]
    assert left == [date(2010, 5, 3)]
