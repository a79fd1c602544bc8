"""Row counts of whole tables, across aggregates: what the demo prints for each stage."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa


def row_counts(conn: sa.Connection, tables: Iterable[str]) -> dict[str, int]:
    """How many rows each of ``tables`` holds (names from code, never from input)."""
    return {
        table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in tables
    }
