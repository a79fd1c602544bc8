"""Versioned SQL migrations from ``sql/``, each applied once and recorded with its checksum.

A file ``NNNN_name.sql`` is applied in version order inside one transaction. Re-running is a
no-op; an applied file whose content changed is an error (write a new migration instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from pipelines.config import PROJECT_ROOT
from pipelines.errors import MigrationError

SQL_DIR = PROJECT_ROOT / "sql"

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    filename    text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Migration files in version order; two files with one version number are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        prefix = path.name.split("_", 1)[0]
        if not prefix.isdigit():
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        version = int(prefix)
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].path.name} share version {version}"
            )
        found[version] = Migration(version, path)
    return [found[v] for v in sorted(found)]


def _run_script(conn: sa.Connection, sql: str) -> None:
    """Run a whole SQL file as written: no bind parameters, so ``%`` (as in PL/pgSQL's
    ``format('%I')``) is passed through instead of read as a placeholder."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise MigrationError("migrations need a live psycopg connection")
    with driver.cursor() as cursor:
        cursor.execute(sql)


def recorded(conn: sa.Connection) -> dict[int, str]:
    """The checksum of each applied migration, by version (``schema_migrations``)."""
    return dict(conn.execute(sa.text("SELECT version, checksum FROM schema_migrations")).all())


def upgrade(engine: sa.Engine, sql_dir: Path = SQL_DIR) -> list[int]:
    """Apply pending migrations; return the versions applied now (empty when up to date)."""
    applied_now: list[int] = []
    with engine.begin() as conn:
        conn.execute(sa.text(_LEDGER))
        # One upgrader at a time: concurrent Airflow tasks may all call upgrade().
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('mltrade.migrations'))"))
        applied = recorded(conn)
        for migration in discover(sql_dir):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.path.name} changed after it was applied; migrations are "
                        "immutable: revert the edit and add a new migration file instead"
                    )
                continue
            _run_script(conn, migration.path.read_text())
            conn.execute(
                sa.text(
                    "INSERT INTO schema_migrations (version, filename, checksum) "
                    "VALUES (:v, :f, :c)"
                ),
                {"v": migration.version, "f": migration.path.name, "c": migration.checksum},
            )
            applied_now.append(migration.version)
    return applied_now
