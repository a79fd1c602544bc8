from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.errors import MigrationError
from pipelines.warehouse.migrate import discover, upgrade


def test_upgrade_records_every_migration_and_reruns_as_noop(engine: sa.Engine) -> None:
    versions = [m.version for m in discover()]
    with engine.connect() as conn:
        recorded = conn.execute(sa.text("SELECT version FROM schema_migrations ORDER BY 1"))
        assert [r[0] for r in recorded] == versions
    assert upgrade(engine) == []


def test_changed_applied_migration_is_refused(engine: sa.Engine, tmp_path) -> None:
    first = discover()[0]
    (tmp_path / first.path.name).write_text(first.path.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        upgrade(engine, sql_dir=tmp_path)


def test_core_tables_exist(engine: sa.Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "bars",
        "quarantine",
        "features",
        "predictions",
        "target_weights",
        "orders",
        "fills",
        "positions",
        "pipeline_runs",
    } <= tables
