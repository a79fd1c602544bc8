"""The engine's pool and statement timeout come from the settings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.errors import WarehouseError
from pipelines.warehouse.engine import create_engine


def test_pool_size_and_timeout_come_from_settings(warehouse_url, monkeypatch, settings) -> None:
    monkeypatch.setenv("WAREHOUSE_POOL_SIZE", "3")
    monkeypatch.setenv("WAREHOUSE_STATEMENT_TIMEOUT_MS", "150")
    from pipelines.config import get_settings

    get_settings.cache_clear()
    engine = create_engine(warehouse_url, get_settings())
    try:
        assert engine.pool.size() == 3
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "150ms"
            assert conn.execute(sa.text("SELECT pg_sleep(0.01)")).first() is not None
        timeout = pytest.raises(WarehouseError, match="WAREHOUSE_STATEMENT_TIMEOUT_MS=150")
        with engine.connect() as conn, timeout:
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        with engine.connect() as conn:  # the pool hands out a healthy connection afterwards
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        get_settings.cache_clear()


def test_other_errors_are_left_alone(engine: sa.Engine) -> None:
    missing = pytest.raises(sa.exc.ProgrammingError, match="no_such_table")
    with engine.connect() as conn, missing:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
