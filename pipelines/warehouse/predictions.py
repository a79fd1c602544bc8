"""The predictions repository: what a model expects each symbol to return, by date.

A row is keyed by (model_name, model_version, session_date, symbol); ``expected_return`` is the
next-session simple return predicted from the features dated ``session_date`` (the close the
plan trades on). Writing again updates only the values that changed (a rerun is a no-op).
:func:`dates_before` and :func:`with_realized` read on the caller's connection, for the
monitoring's scores of predictions against realized returns.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

_UPSERT = sa.text("""
INSERT INTO predictions (model_name, model_version, session_date, symbol, expected_return,
                         feature_set_version, run_id)
SELECT :m, :v, :d, x.symbol, x.expected, :fsv, :run
FROM unnest(CAST(:s AS text[]), CAST(:r AS double precision[])) AS x(symbol, expected)
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
    """Upsert ``expected`` (by symbol) in one statement; return the rows given."""
    if len(expected):
        with engine.begin() as conn:
            conn.execute(
                _UPSERT,
                {"m": model_name, "v": model_version, "d": session_date, "fsv": feature_set_version,
                 "run": run_id, "s": [str(s) for s in expected.index],
                 "r": [float(v) for v in expected.to_numpy()]},
            )  # fmt: skip
    return len(expected)


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


def dates_before(conn: sa.Connection, before: date) -> list[sa.Row]:
    """``(model_name, session_date)`` of every prediction date before ``before``, by model
    name, newest first."""
    return list(
        conn.execute(
            sa.text(
                "SELECT DISTINCT model_name, session_date FROM predictions "
                "WHERE session_date < :n ORDER BY model_name, session_date DESC"
            ),
            {"n": before},
        ).all()
    )


def with_realized(
    conn: sa.Connection, model_name: str, session_date: date, realized_session: date
) -> pd.DataFrame:
    """The model's predictions dated ``session_date`` beside the simple return from that
    session's close to ``realized_session``'s (unadjusted closes): ``version``, ``symbol``,
    ``expected``, ``realized``; symbols without both bars are left out."""
    return pd.DataFrame(
        conn.execute(
            sa.text(
                "SELECT p.model_version, p.symbol, p.expected_return, "
                "e.close / s.close - 1 AS realized FROM predictions p "
                "JOIN bars s ON s.symbol = p.symbol AND s.session_date = :d "
                "JOIN bars e ON e.symbol = p.symbol AND e.session_date = :r "
                "WHERE p.model_name = :m AND p.session_date = :d"
            ),
            {"m": model_name, "d": session_date, "r": realized_session},
        ).all(),
        columns=["version", "symbol", "expected", "realized"],
    )
