"""Writing and reading the feature store (``features`` table, one jsonb row per symbol-date)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from pipelines.features import FEATURE_SET, characteristics
from pipelines.runlog import stage_run
from pipelines.warehouse.engine import copy_rows

# Calendar days of bars read before ``start`` so the first rows see their full lookback.
_LOOKBACK_DAYS = 2 * characteristics.MIN_HISTORY


def _read_inputs(engine: sa.Engine, start: date | None, end: date | None) -> pd.DataFrame:
    query = "SELECT symbol, session_date, high, low, close, volume FROM bars WHERE true"
    params: dict = {}
    if start is not None:
        query += " AND session_date >= :first"
        params["first"] = start - timedelta(days=_LOOKBACK_DAYS)
    if end is not None:
        query += " AND session_date <= :end"
        params["end"] = end
    with engine.connect() as conn:
        return pd.read_sql(sa.text(query), conn, params=params)


def build_features(
    engine: sa.Engine, start: date | None = None, end: date | None = None, run_id: str = "manual"
) -> int:
    """(Re)compute the feature set for sessions in ``[start, end]`` (None: unbounded).

    Replaces that interval of the current feature set in one transaction; returns rows written.
    """
    with stage_run(
        engine,
        run_id,
        "features",
        start=start,
        end=end,
        feature_set=FEATURE_SET.name,
        version=FEATURE_SET.key,
    ) as run:
        bars = _read_inputs(engine, start, end)
        frame = characteristics.compute(bars) if len(bars) else pd.DataFrame()
        if start is not None and len(frame):
            frame = frame[frame.index.get_level_values("session_date") >= start]
        with engine.begin() as conn:
            _delete_interval(conn, start, end)
            rows = _copy_rows(conn, frame)
        run.summary = {"rows": rows}
    return rows


def _delete_interval(conn: sa.Connection, start: date | None, end: date | None) -> None:
    conn.execute(
        sa.text(
            "DELETE FROM features WHERE feature_set = :fs AND feature_set_version = :v "
            "AND session_date >= coalesce(CAST(:a AS date), '-infinity') "
            "AND session_date <= coalesce(CAST(:b AS date), 'infinity')"
        ),
        {"fs": FEATURE_SET.name, "v": FEATURE_SET.key, "a": start, "b": end},
    )


def _copy_rows(conn: sa.Connection, frame: pd.DataFrame) -> int:
    columns = list(frame.columns)
    rows = (
        (
            FEATURE_SET.name,
            FEATURE_SET.key,
            symbol,
            session_date,
            json.dumps(dict(zip(columns, values.round(12).tolist(), strict=True))),
        )
        for (session_date, symbol), values in zip(frame.index, frame.to_numpy(), strict=True)
    )
    copy_rows(
        conn,
        "COPY features (feature_set, feature_set_version, symbol, session_date, "
        '"values") FROM STDIN',
        rows,
    )
    return len(frame)


def load_features(engine: sa.Engine, start: date, end: date) -> pd.DataFrame:
    """The current feature set for sessions in ``[start, end]``: index (session_date, symbol)."""
    columns = ", ".join(f"""("values"->>'{n}')::float8 AS {n}""" for n in characteristics.NAMES)
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                f"SELECT session_date, symbol, {columns} FROM features "
                "WHERE feature_set = :fs AND feature_set_version = :v "
                "AND session_date BETWEEN :a AND :b ORDER BY session_date, symbol"
            ),
            conn,
            params={"fs": FEATURE_SET.name, "v": FEATURE_SET.key, "a": start, "b": end},
        )
    return frame.set_index(["session_date", "symbol"])


def forward_returns(engine: sa.Engine, start: date, end: date) -> pd.Series:
    """Next-session simple return (close to close) for features dated in ``[start, end]``.

    Only bars dated on or before ``end`` are used: the last date's label is the return into
    ``end``'s close when ``end`` is a bar date, so nothing past ``end`` leaks in.
    """
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                "SELECT session_date, symbol, next_close / close - 1 AS forward_return FROM ("
                "  SELECT session_date, symbol, close, lead(close) OVER "
                "    (PARTITION BY symbol ORDER BY ts) AS next_close FROM bars "
                "  WHERE session_date BETWEEN :a AND :b) s "
                "WHERE next_close IS NOT NULL"
            ),
            conn,
            params={"a": start, "b": end},
        )
    return frame.set_index(["session_date", "symbol"])["forward_return"]
