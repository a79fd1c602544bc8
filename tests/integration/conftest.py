"""Fixtures of the tests that run real Airflow processes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from pipelines.warehouse import embedded
from scripts.airflow_env import psycopg2_url
from tests.support.airflow_processes import BIN
from tests.support.warehouse import drop_database


@pytest.fixture
def airflow_metadata_url(warehouse_url: str) -> Iterator[str]:
    """A fresh database for Airflow's metadata on the warehouse's server, dropped after.

    Its URL comes from ``mltrade db url --database … --show-password``, as in ``make airflow``
    (which switches it to the psycopg2 driver, as here).
    """
    name = f"airflow_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [str(BIN / "mltrade"), "db", "url", "--database", name, "--show-password"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield psycopg2_url(done.stdout.strip())  # the driver make airflow uses (its UI needs it)
    drop_database(embedded.admin_uri(warehouse_url), name)
