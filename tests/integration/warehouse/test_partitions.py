"""Native range partitioning of ``bars`` on plain PostgreSQL (the embedded server)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import WarehouseError
from pipelines.sources.sample import SampleSource
from pipelines.warehouse import partitions
from pipelines.warehouse.bars import upsert_bars
from tests.support.bars import synthetic_bars
from tests.support.warehouse import drop_database

pytestmark = pytest.mark.usefixtures("warehouse")


def _reset_partitions(engine: sa.Engine) -> None:
    """Drop every yearly partition a previous test made (the default one stays)."""
    with engine.begin() as conn:
        for part in partitions.list_partitions(conn, "bars"):
            conn.exec_driver_sql(f'DROP TABLE "{part.name}"')


@pytest.fixture
def bars_engine(warehouse: sa.Engine) -> sa.Engine:
    with warehouse.connect() as conn:
        if partitions.backend(conn, "bars") != "partitioned":
            pytest.skip("bars is not natively partitioned on this server (TimescaleDB?)")
    _reset_partitions(warehouse)
    return warehouse


def _where(engine: sa.Engine) -> pd.DataFrame:
    """Rows per physical partition."""
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                "SELECT tableoid::regclass::text AS part, symbol, session_date FROM bars "
                "ORDER BY symbol, ts"
            ),
            conn,
        )



def test_rows_land_in_their_year(bars_engine: sa.Engine) -> None:
    frame = SampleSource().fetch_daily_bars(date(2009, 12, 28), date(2010, 1, 8), ["IBM"])
    with bars_engine.begin() as conn:
        created = partitions.ensure_partitions(conn, "bars", date(2009, 12, 28), date(2010, 1, 8))
        upsert_bars(conn, frame, "sample")
    assert created == ["bars_y2009", "bars_y2010"]
    where = _where(bars_engine)
    expected = ["bars_y2009" if d.year == 2009 else "bars_y2010" for d in where["session_date"]]
    assert where["part"].tolist() == expected
    assert {"bars_y2009", "bars_y2010"} <= set(where["part"])


def test_ensure_is_idempotent(bars_engine: sa.Engine) -> None:
    with bars_engine.begin() as conn:
        first = partitions.ensure_partitions(conn, "bars", date(2010, 1, 1), date(2012, 6, 30))
        again = partitions.ensure_partitions(conn, "bars", date(2010, 1, 1), date(2012, 6, 30))
        names = [p.name for p in partitions.list_partitions(conn, "bars")]
    assert first == ["bars_y2010", "bars_y2011", "bars_y2012"] and again == []
    assert names == first


def test_default_partition_catches_rows_then_hands_them_over(bars_engine: sa.Engine) -> None:
    frame = synthetic_bars([date(1999, 3, 1), date(1999, 3, 2)])
    with bars_engine.begin() as conn:  # no partition for 1999: nothing is refused
        assert upsert_bars(conn, frame, "test") == 2
    assert set(_where(bars_engine)["part"]) == {"bars_default"}

    with bars_engine.begin() as conn:
        assert partitions.ensure_partitions(conn, "bars", date(1999, 1, 1), date(1999, 12, 31))
    where = _where(bars_engine)
    assert where["part"].tolist() == ["bars_y1999", "bars_y1999"]
    assert where["session_date"].tolist() == [date(1999, 3, 1), date(1999, 3, 2)]


def test_upsert_into_partitions_is_idempotent(bars_engine: sa.Engine) -> None:
    frame = SampleSource().fetch_daily_bars(date(2009, 12, 1), date(2010, 1, 29), ["IBM", "XOM"])
    with bars_engine.begin() as conn:
        partitions.ensure_partitions(conn, "bars", date(2009, 12, 1), date(2010, 1, 29))
        assert upsert_bars(conn, frame, "sample") == len(frame)
    with bars_engine.begin() as conn:
        assert upsert_bars(conn, frame, "sample") == 0
    assert len(_where(bars_engine)) == len(frame)


def test_retention_drops_only_wholly_expired_partitions(bars_engine: sa.Engine) -> None:
    days = [date(2007, 6, 1), date(2008, 12, 31), date(2009, 1, 2), date(2010, 6, 1)]
    with bars_engine.begin() as conn:
        partitions.ensure_partitions(conn, "bars", date(2007, 1, 1), date(2010, 12, 31))
        upsert_bars(conn, synthetic_bars(days), "test")
        upsert_bars(conn, synthetic_bars([date(1990, 1, 2)], "OLD"), "test")  # default partition

    # As of 2010-06-01 keeping 500 days: cutoff 2009-01-18. 2007 and 2008 end before it;
    # 2009 straddles it and must stay whole.
    with bars_engine.begin() as conn:
        dropped = partitions.drop_expired_partitions(conn, "bars", date(2010, 6, 1), 500)
        names = [p.name for p in partitions.list_partitions(conn, "bars")]
    assert dropped == ["bars_y2007", "bars_y2008"]
    assert names == ["bars_y2009", "bars_y2010"]
    left = _where(bars_engine)
    assert sorted(left["session_date"]) == [date(1990, 1, 2), date(2009, 1, 2), date(2010, 6, 1)]
    assert "bars_default" in set(left["part"]), "the default partition is never dropped"

    with bars_engine.begin() as conn:  # the same as_of again: nothing more goes
        assert partitions.drop_expired_partitions(conn, "bars", date(2010, 6, 1), 500) == []


def test_retention_off_by_default_keeps_everything(bars_engine: sa.Engine, settings) -> None:
    assert settings.bars_retention_days is None
    with bars_engine.begin() as conn:
        partitions.ensure_partitions(conn, "bars", date(1950, 1, 1), date(1950, 1, 1))
        dropped = partitions.drop_expired_partitions(
            conn, "bars", date(2030, 1, 1), settings.bars_retention_days
        )
        assert dropped == []
        assert [p.name for p in partitions.list_partitions(conn, "bars")] == ["bars_y1950"]


def test_unknown_table_and_bad_range_are_refused(bars_engine: sa.Engine) -> None:
    with bars_engine.begin() as conn:
        with pytest.raises(WarehouseError, match="not a time-partitioned table"):
            partitions.ensure_partitions(conn, "orders", date(2010, 1, 1), date(2010, 1, 2))
        with pytest.raises(WarehouseError, match="after end"):
            partitions.ensure_partitions(conn, "bars", date(2010, 1, 2), date(2010, 1, 1))


@pytest.mark.slow  # a database of its own, migrated twice: 5-15 s here
def test_migration_keeps_existing_bars_and_key(engine: sa.Engine, tmp_path) -> None:
    """0004 on a warehouse that already holds bars: every row kept, in its year's partition."""
    import shutil
    import uuid

    from pipelines.config import get_settings
    from pipelines.warehouse import embedded
    from pipelines.warehouse.engine import create_engine
    from pipelines.warehouse.migrate import SQL_DIR, discover, upgrade

    admin = engine.url.set(database="postgres").render_as_string(hide_password=False)
    admin = admin.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"mltrade_mig_{uuid.uuid4().hex[:8]}"
    embedded.ensure_database(admin, name)
    other = create_engine(str(engine.url.set(database=name)), get_settings())
    try:
        for migration in discover():
            if migration.version < 4:
                shutil.copy(migration.path, tmp_path / migration.path.name)
        upgrade(other, sql_dir=tmp_path)
        frame = SampleSource().fetch_daily_bars(date(2009, 12, 21), date(2010, 1, 8), ["IBM"])
        with other.begin() as conn:
            upsert_bars(conn, frame, "sample")
            before = conn.exec_driver_sql(
                "SELECT md5(string_agg(b::text, '|' ORDER BY symbol, ts)) FROM bars b"
            ).scalar_one()
        upgrade(other, sql_dir=SQL_DIR)
        with other.connect() as conn:
            after = conn.exec_driver_sql(
                "SELECT md5(string_agg(b::text, '|' ORDER BY symbol, ts)) FROM bars b"
            ).scalar_one()
            parts = [p.name for p in partitions.list_partitions(conn, "bars")]
            pkey = conn.exec_driver_sql(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'bars'::regclass AND contype = 'p'"
            ).scalar_one()
        assert after == before
        assert parts == ["bars_y2009", "bars_y2010"]
        assert pkey == "PRIMARY KEY (symbol, ts)"
    finally:
        other.dispose()
        drop_database(admin, name)


def test_retention_command_uses_the_setting(bars_engine: sa.Engine, monkeypatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.config import get_settings

    with bars_engine.begin() as conn:
        partitions.ensure_partitions(conn, "bars", date(2001, 1, 1), date(2010, 1, 1))
    runner = CliRunner()
    get_settings.cache_clear()
    kept = runner.invoke(app, ["db", "retention", "--as-of", "2010-06-01"])
    assert kept.exit_code == 0, kept.output
    assert '"bars": []' in kept.output, "off by default: nothing dropped"

    monkeypatch.setenv("BARS_RETENTION_DAYS", "1500")  # cutoff 2006-04-22
    get_settings.cache_clear()
    try:
        dropped = runner.invoke(app, ["db", "retention", "--as-of", "2010-06-01"])
    finally:
        get_settings.cache_clear()
    assert dropped.exit_code == 0, dropped.output
    with bars_engine.connect() as conn:
        names = [p.name for p in partitions.list_partitions(conn, "bars")]
    assert names == [f"bars_y{y}" for y in range(2006, 2011)]
