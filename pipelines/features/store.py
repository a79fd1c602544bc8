"""Writing and reading the feature store (``features`` table, one jsonb row per symbol-date)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from pipelines.features import FEATURE_SET, FeatureSet, characteristics
from pipelines.runlog import stage_run
from pipelines.warehouse.engine import copy_rows, read_frame

# Calendar days of bars read before ``start`` so the first rows see their full lookback.
_LOOKBACK_DAYS = 2 * characteristics.MIN_HISTORY


def _read_inputs(engine: sa.Engine, start: date | None, end: date | None) -> pd.DataFrame:
    first = None if start is None else start - timedelta(days=_LOOKBACK_DAYS)
    with engine.connect() as conn:
        return read_frame(
            conn,
            "SELECT symbol, session_date, high, low, close, volume FROM bars "
            "WHERE session_date >= coalesce(%s::date, '-infinity') "
            "AND session_date <= coalesce(%s::date, 'infinity')",
            (first, end),
            ["symbol", "session_date", "high", "low", "close", "volume"],
        )


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
    name, version = FEATURE_SET.name, FEATURE_SET.key  # the key hashes the definition: once
    rows = (
        (
            name,
            version,
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


def build_sentiment_features(
    engine: sa.Engine, start: date, end: date, run_id: str = "manual"
) -> int:
    """(Re)compute the optional ``sentiment`` feature set for sessions in ``[start, end]``
    from the scored news store (pipelines/features/sentiment.py); returns rows written."""
    from pipelines import calendar
    from pipelines.features import sentiment
    from pipelines.news import store as news_store

    fs = sentiment.SENTIMENT_SET
    with stage_run(
        engine, run_id, "sentiment_features", start=start, end=end, feature_set=fs.name,
        version=fs.key,
    ) as run:
        sessions = calendar.sessions(start, end)
        first, last = sentiment.input_window(start, end) if sessions else (None, None)
        with engine.connect() as conn:
            items = (
                news_store.scored_items(conn, first, last, sentiment.SCORERS)
                if first is not None and last is not None
                else pd.DataFrame()
            )
        frame = sentiment.compute(items, sessions)
        with engine.begin() as conn:
            rows = write_feature_set(conn, fs, start, end, frame)
        run.summary = {"rows": rows, "sessions": len(sessions)}
    return rows


def write_feature_set(
    conn: sa.Connection, fs: FeatureSet, start: date, end: date, frame: pd.DataFrame
) -> int:
    """Replace ``[start, end]`` of feature set ``fs`` with ``frame`` (index (session_date,
    symbol)) on the connection's transaction; returns rows written."""
    conn.execute(
        sa.text(
            "DELETE FROM features WHERE feature_set = :fs AND feature_set_version = :v "
            "AND session_date BETWEEN :a AND :b"
        ),
        {"fs": fs.name, "v": fs.key, "a": start, "b": end},
    )
    columns = list(frame.columns)
    rows = (
        (fs.name, fs.key, symbol, session_date,
         json.dumps(dict(zip(columns, values.round(12).tolist(), strict=True))))
        for (session_date, symbol), values in zip(frame.index, frame.to_numpy(), strict=True)
    )
    copy_rows(
        conn,
        "COPY features (feature_set, feature_set_version, symbol, session_date, "
        '"values") FROM STDIN',
        rows,
    )
    return len(frame)


def load_feature_set(
    engine: sa.Engine, fs: FeatureSet, names: tuple[str, ...], start: date, end: date
) -> pd.DataFrame:
    """Feature set ``fs`` (its current version) for sessions in ``[start, end]``: index
    (session_date, symbol), one float column per name."""
    columns = ", ".join(f"""("values"->>'{n}')::float8 AS {n}""" for n in names)
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                f"SELECT session_date, symbol, {columns} FROM features "
                "WHERE feature_set = :fs AND feature_set_version = :v "
                "AND session_date BETWEEN :a AND :b ORDER BY session_date, symbol"
            ),
            conn,
            params={"fs": fs.name, "v": fs.key, "a": start, "b": end},
        )
    return frame.set_index(["session_date", "symbol"])
