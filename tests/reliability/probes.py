"""Helpers of the probe suite: outcomes of ``mltrade`` runs and warehouse fingerprints.

:func:`fingerprint` summarizes every data table (row count
and an md5 of the sorted rows), so a probe can assert that nothing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.support.cli import CliResult as Outcome
from tests.support.warehouse import DATA_TABLES


def fingerprint(engine: sa.Engine) -> dict[str, tuple[int, str | None]]:
    """``{table: (rows, md5 of the sorted rows)}`` for every data table."""
    with engine.connect() as conn:
        return {
            table: tuple(
                conn.execute(
                    sa.text(
                        f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) "
                        f"FROM {table} t"
                    )
                ).one()
            )
            for table in DATA_TABLES
        }


def assert_one_line_error(outcome: Outcome, code: int, *words: str) -> str:
    """The outcome failed with ``code`` and exactly one ``error:`` line containing ``words``."""
    assert outcome.code == code, (outcome.code, outcome.err, outcome.out)
    lines = [line for line in outcome.error_lines if line.startswith("error:")]
    assert len(lines) == 1, outcome.err
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def insert_bars(engine: sa.Engine, days: list[str], symbol: str = "AAPL") -> None:
    """One bar of ``symbol`` at 21:00 UTC on each ISO day (partitions created as a load does)."""
    from pipelines.warehouse.partitions import ensure_partitions

    stamps = [datetime.fromisoformat(d).replace(hour=21, tzinfo=UTC) for d in days]
    with engine.begin() as conn:
        ensure_partitions(conn, "bars", min(stamps).date(), max(stamps).date())
        for ts in stamps:
            conn.execute(
                sa.text(
                    "INSERT INTO bars (symbol, ts, session_date, open, high, low, close, volume, "
                    "source) VALUES (:s, :ts, :d, 1, 1, 1, 1, 100, 'sample')"
                ),
                {"s": symbol, "ts": ts, "d": ts.date()},
            )
