"""The engine's pool and statement timeout come from the settings; sibling databases."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa

from pipelines.errors import WarehouseError
from pipelines.warehouse import embedded
from pipelines.warehouse.engine import create_engine, database_url
from tests.support.warehouse import drop_database


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


def test_database_url_creates_a_sibling_database_once(warehouse_url, settings) -> None:
    name = f"sibling_{uuid.uuid4().hex[:8]}"
    admin = embedded.admin_uri(warehouse_url)
    try:
        url = database_url(name, settings)
        assert url == embedded.sqlalchemy_url(warehouse_url, name)
        assert database_url(name, settings) == url  # the second call finds it
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == name
        engine.dispose()
    finally:
        drop_database(admin, name)


def test_database_url_says_what_to_do_without_createdb(warehouse_url, monkeypatch) -> None:
    role = f"no_createdb_{uuid.uuid4().hex[:8]}"
    admin = embedded.admin_uri(warehouse_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB PASSWORD \'x\'')
    url = sa.engine.make_url(warehouse_url).set(username=role, password="x")
    monkeypatch.setenv("WAREHOUSE_URL", url.render_as_string(hide_password=False))
    from pipelines.config import get_settings

    get_settings.cache_clear()
    try:
        with pytest.raises(WarehouseError, match="Grant the user CREATEDB") as raised:
            database_url("never_created", get_settings())
        assert "'never_created'" in str(raised.value)
        assert ":x@" not in str(raised.value)  # the password stays out of the message
    finally:
        get_settings.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
