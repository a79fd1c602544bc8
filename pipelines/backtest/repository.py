"""What a backtest copies from the warehouse into its own store (see sandbox.py).

Bars that passed the validation gate into the warehouse are copied as they are, with the
``validation_runs`` rows that admitted them, so the live risk gate's data-quality check finds
the same decisions in the backtest's store as in the warehouse.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.bars import upsert_bars
from pipelines.warehouse.partitions import ensure_partitions

_VALIDATION = (
    "run_id, source, suite, start_date, end_date, rows_checked, rows_failed, success, summary"
)


def copy_market(
    source: sa.Engine, store: sa.Engine, start: date, end: date, symbols: list[str]
) -> int:
    """Copy ``symbols``' bars of sessions ``[start, end]`` and the validation runs covering
    any of those sessions from ``source`` to ``store``; return the bars copied."""
    with source.connect() as conn:
        bars = pd.read_sql(
            sa.text(
                "SELECT symbol, ts, session_date, open, high, low, close, volume, source "
                "FROM bars WHERE session_date BETWEEN :a AND :b AND symbol = ANY(:s)"
            ),
            conn,
            params={"a": start, "b": end, "s": symbols},
        )
        runs = (
            conn.execute(
                sa.text(
                    f"SELECT {_VALIDATION} FROM validation_runs WHERE start_date <= :b "
                    "AND end_date >= :a ORDER BY id"
                ),
                {"a": start, "b": end},
            )
            .mappings()
            .all()
        )
    with store.begin() as conn:
        ensure_partitions(conn, "bars", start, end)
        for vendor, part in bars.groupby("source"):
            upsert_bars(conn, part.drop(columns="source"), str(vendor))
        if runs:
            conn.execute(
                sa.text(
                    f"INSERT INTO validation_runs ({_VALIDATION}) VALUES (:run_id, :source, "
                    ":suite, :start_date, :end_date, :rows_checked, :rows_failed, :success, "
                    "CAST(:summary AS jsonb))"
                ),
                [{**r, "summary": json.dumps(r["summary"])} for r in runs],
            )
    return len(bars)
