"""The same warehouse behaviour on plain PostgreSQL (partitions) and TimescaleDB (hypertables)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource
from pipelines.warehouse import partitions, universe
from tests.support.bars import synthetic_bars

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM"]



def _insert_bars(conn: sa.Connection, frame: pd.DataFrame, source: str) -> None:
    """Plain INSERTs: the WASM TimescaleDB server crashes on COPY FROM STDIN (see conftest)."""
    conn.execute(
        sa.text(
            "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, source) "
            "VALUES (:symbol, :ts, :session_date, :open, :high, :low, :close, :volume, :source)"
        ),
        frame.assign(source=source).to_dict("records"),
    )


def _is_timescale(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return partitions.backend(conn, "bars") == "hypertable"


def _fingerprint(engine: sa.Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        return tuple(
            conn.exec_driver_sql(
                "SELECT count(*), md5(coalesce(string_agg(concat_ws(',', symbol, "
                "extract(epoch FROM ts), session_date, open, high, low, close, volume, source), "
                "'|' ORDER BY symbol, ts), '')) FROM bars"
            ).one()
        )


def test_ingest_upserts_idempotently(backend: sa.Engine) -> None:
    if _is_timescale(backend):
        pytest.skip("the WASM TimescaleDB server crashes on COPY FROM STDIN; see test_merge_*")
    first = ingest(backend, SampleSource(), date(2010, 3, 1), date(2010, 3, 12), SYMBOLS, "a", 0.05)
    once = _fingerprint(backend)
    again = ingest(backend, SampleSource(), date(2010, 3, 1), date(2010, 3, 12), SYMBOLS, "b", 0.05)
    assert first.rows_loaded == 4 * 10 and again.rows_loaded == 0
    assert _fingerprint(backend) == once


def test_no_row_is_refused_for_its_date(backend: sa.Engine) -> None:
    with backend.begin() as conn:  # no partition was made for these years
        _insert_bars(conn, synthetic_bars([date(1971, 2, 8), date(2099, 12, 31)]), "test")
    assert _fingerprint(backend)[0] == 2


def test_retention_drops_old_periods_and_keeps_recent_rows(backend: sa.Engine) -> None:
    days = [date(2005, 6, 1), date(2005, 6, 2), date(2010, 5, 3), date(2010, 6, 1)]
    with backend.begin() as conn:
        partitions.ensure_partitions(conn, "bars", date(2005, 1, 1), date(2010, 12, 31))
        _insert_bars(conn, synthetic_bars(days), "test")
        dropped = partitions.drop_expired_partitions(conn, "bars", date(2010, 6, 2), 365)
        left = conn.execute(sa.text("SELECT session_date FROM bars ORDER BY 1")).scalars().all()
    assert dropped, "the 2005 period is wholly expired"
    assert left == [date(2010, 5, 3), date(2010, 6, 1)]
    with backend.begin() as conn:  # off: nothing goes
        assert partitions.drop_expired_partitions(conn, "bars", date(2030, 1, 1), None) == []


def test_daily_from_minute(backend: sa.Engine) -> None:
    start = pd.Timestamp("2010-03-01 14:31", tz="UTC")
    rows = [
        {"s": "IBM", "ts": start + pd.Timedelta(minutes=i), "c": c, "v": 100.0}
        for i, c in enumerate([10.0, 12.0, 11.0])
    ]
    with backend.begin() as conn:
        partitions.ensure_partitions(conn, "minute_bars", date(2010, 3, 1), date(2010, 3, 1))
        conn.execute(
            sa.text(
                "INSERT INTO minute_bars (symbol, ts, open, high, low, close, volume, source) "
                "VALUES (:s, :ts, :c, :c + 1, :c - 1, :c, :v, 'test')"
            ),
            rows,
        )
    with backend.connect() as conn:
        day = conn.execute(
            sa.text(
                "SELECT symbol, day, open, high, low, close, volume, minutes FROM daily_from_minute"
            )
        ).one()
    assert day.symbol == "IBM" and day.day == pd.Timestamp("2010-03-01", tz="UTC")
    assert (day.open, day.high, day.low, day.close) == (10.0, 13.0, 9.0, 11.0)
    assert (day.volume, day.minutes) == (300.0, 3)


def test_universe_membership(backend: sa.Engine) -> None:
    frame = SampleSource().fetch_daily_bars(date(2010, 3, 1), date(2010, 3, 31), ["IBM", "XOM"])
    frame = frame[(frame["symbol"] == "IBM") | (frame["session_date"] <= date(2010, 3, 15))]
    with backend.begin() as conn:
        _insert_bars(conn, frame, "sample")
        universe.build_from_bars(conn, "sample")
        assert universe.members(conn, date(2010, 3, 15)) == ["IBM", "XOM"]
        assert universe.members(conn, date(2010, 3, 16)) == ["IBM"]


@pytest.mark.timescaledb
def test_timescale_objects(timescale_engine: sa.Engine) -> None:
    """Hypertables, columnstore policies and the continuous aggregate exist as 0002/0005 say."""
    with timescale_engine.connect() as conn:
        hypertables = (
            conn.exec_driver_sql(
                "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
            )
            .scalars()
            .all()
        )
        jobs = conn.exec_driver_sql(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
            "WHERE hypertable_name IS NOT NULL ORDER BY 1, 2"
        ).all()
        caggs = conn.exec_driver_sql(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        ).all()
    assert {"bars", "minute_bars"} <= set(hypertables)
    assert ("policy_compression", "bars") in [tuple(j) for j in jobs]
    assert ("policy_compression", "minute_bars") in [tuple(j) for j in jobs]
    assert [tuple(c) for c in caggs] == [("daily_from_minute", False)]


def test_merge_is_idempotent_and_updates_restated_bars(backend: sa.Engine) -> None:
    """The ON CONFLICT merge of the upsert path (fed by INSERT here instead of COPY)."""
    from pipelines.warehouse.bars import _MERGE

    frame = SampleSource().fetch_daily_bars(date(2010, 3, 1), date(2010, 3, 5), SYMBOLS)

    def merge(rows: pd.DataFrame) -> int:
        with backend.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS bars_incoming "
                "(LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            conn.execute(
                sa.text(
                    "INSERT INTO bars_incoming (symbol, ts, session_date, open, high, low, "
                    "close, volume, source) VALUES (:symbol, :ts, :session_date, :open, :high, "
                    ":low, :close, :volume, 'sample')"
                ),
                rows.to_dict("records"),
            )
            return conn.exec_driver_sql(_MERGE).rowcount

    assert merge(frame) == 20
    once = _fingerprint(backend)
    assert merge(frame) == 0 and _fingerprint(backend) == once
    restated = frame.copy()
    restated.loc[3, "volume"] += 100
    assert merge(restated) == 1


@pytest.mark.timescaledb
def test_minute_retention_keeps_the_daily_aggregate(timescale_engine: sa.Engine) -> None:
    """Minutes dropped by retention stay summed in the refreshed continuous aggregate."""
    engine = timescale_engine
    start = pd.Timestamp("2010-03-01 14:31", tz="UTC")
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE minute_bars")
        conn.execute(
            sa.text(
                "INSERT INTO minute_bars (symbol, ts, open, high, low, close, volume, source) "
                "VALUES ('IBM', :ts, 10, 11, 9, 10.5, 100, 'test')"
            ),
            [{"ts": start + pd.Timedelta(minutes=i)} for i in range(3)],
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CALL refresh_continuous_aggregate('daily_from_minute', NULL, NULL)")
    with engine.begin() as conn:
        dropped = partitions.drop_expired_partitions(conn, "minute_bars", date(2010, 6, 1), 31)
        minutes = conn.exec_driver_sql("SELECT count(*) FROM minute_bars").scalar_one()
        daily = conn.exec_driver_sql("SELECT volume, minutes FROM daily_from_minute").one()
    assert dropped and minutes == 0
    assert tuple(daily) == (300.0, 3)
