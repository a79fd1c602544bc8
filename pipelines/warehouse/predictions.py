"""The predictions repository: what a model expects each symbol to return, by date.

A row is keyed by (model_name, model_version, session_date, symbol); ``expected_return`` is the
next-session simple return predicted from the features dated ``session_date`` (the close the
plan trades on). Writing again updates only the values that changed (a rerun is a no-op).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

_UPSERT = sa.text("""
INSERT INTO predictions (model_name, model_version, session_date, symbol, expected_return,
                         feature_set_version, run_id)
VALUES (:m, :v, :d, :s, :r, :fsv, :run)
ON CONFLICT (model_name, model_version, session_date, symbol) DO UPDATE
SET expected_return = excluded.expected_return, run_id = excluded.run_id
WHERE predictions.expected_return IS DISTINCT FROM excluded.expected_return
""")


def write(
    engine: sa.Engine,
    model_name: str,
    model_version: str,
    session_date: date,
    expected: pd.Series,
    feature_set_version: str,
    run_id: str,
) -> int:
    """Upsert ``expected`` (by symbol) in one transaction; return the rows given."""
    rows = [
        {"m": model_name, "v": model_version, "d": session_date, "s": symbol,
         "r": float(value), "fsv": feature_set_version, "run": run_id}
        for symbol, value in expected.items()
    ]  # fmt: skip
    if rows:
        with engine.begin() as conn:
            conn.execute(_UPSERT, rows)
    return len(rows)


def read(engine: sa.Engine, model_name: str, model_version: str, session_date: date) -> pd.Series:
    """The model's expected returns dated ``session_date``, by symbol (empty when none)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT symbol, expected_return FROM predictions WHERE model_name = :m "
                "AND model_version = :v AND session_date = :d"
            ),
            {"m": model_name, "v": model_version, "d": session_date},
        ).all()
    return pd.Series(dict(rows), dtype=float)
