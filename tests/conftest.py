"""Shared fixtures: a throwaway warehouse database on a real PostgreSQL server.

By default the server is an embedded PostgreSQL under a temporary ``MLTRADE_HOME`` (MLflow and
Airflow state go there too). With ``WAREHOUSE_URL`` set (e.g. the machine's server at
127.0.0.1:5432), a database ``mltrade_test_<random>`` is created on that server and dropped
at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_TEST_HOME = Path(os.environ.get("MLTRADE_TEST_HOME", f"/tmp/mltrade-test-{os.getpid()}"))
os.environ["MLTRADE_HOME"] = str(_TEST_HOME)
os.environ["AIRFLOW_HOME"] = str(_TEST_HOME / "airflow")
_DAGS = Path(__file__).resolve().parents[1] / "dags"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
sys.path.append(str(_DAGS))  # as Airflow's dags-folder bundle does for shared DAG modules
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.pop("MLFLOW_TRACKING_URI", None)

from pipelines.config import get_settings  # noqa: E402  (reads the environment set above)
from pipelines.warehouse import embedded  # noqa: E402
from pipelines.warehouse.engine import create_engine  # noqa: E402
from pipelines.warehouse.migrate import upgrade  # noqa: E402
from tests.support.warehouse import drop_database, empty_data_tables  # noqa: E402


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    """URL of a fresh, migrated database for this test session."""
    name = f"mltrade_test_{uuid.uuid4().hex[:8]}"
    external = os.environ.get("WAREHOUSE_URL", "")
    if external:
        admin = _libpq(external)
        embedded.ensure_database(admin, name)
        url = embedded.sqlalchemy_url(admin, name)
    else:
        url = embedded.start(_TEST_HOME / "postgres")
        admin = _libpq(url)
        embedded.ensure_database(admin, name)
        url = embedded.sqlalchemy_url(admin, name)
    os.environ["WAREHOUSE_URL"] = url
    get_settings.cache_clear()
    yield url
    if external:
        os.environ["WAREHOUSE_URL"] = external
    drop_database(embedded.admin_uri(admin), name)
    if not external:
        embedded.stop(_TEST_HOME / "postgres")
    shutil.rmtree(_TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(warehouse_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(warehouse_url, get_settings())
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def warehouse(engine: sa.Engine) -> sa.Engine:
    """The session's engine with every data table emptied first."""
    empty_data_tables(engine)
    return engine


@pytest.fixture
def settings(warehouse_url: str):
    """Fresh settings read from the environment (use monkeypatch.setenv before requesting)."""
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def load_sample_bars(warehouse: sa.Engine):
    """Load the real sample bars of some symbols through ingest (the gate records its run)."""
    from pipelines.ingest import ingest
    from pipelines.sources.sample import FIRST_SESSION, LAST_SESSION, SampleSource

    def load(symbols: list[str]) -> None:
        ingest(warehouse, SampleSource(), FIRST_SESSION, LAST_SESSION, symbols, "fixture", 1.0)

    return load
