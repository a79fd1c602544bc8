"""Fixtures of the tests that run real Airflow processes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from pipelines.warehouse import embedded
from tests.support.airflow_processes import BIN


@pytest.fixture
def airflow_metadata_url(warehouse_url: str) -> Iterator[str]:
    """A fresh database for Airflow's metadata on the warehouse's server, dropped after.

    Its URL comes from ``mltrade db url --database … --show-password``, as in ``make airflow``.
    """
    name = f"airflow_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [str(BIN / "mltrade"), "db", "url", "--database", name, "--show-password"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield done.stdout.strip()
    admin = embedded.admin_uri(warehouse_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
