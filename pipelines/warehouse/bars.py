"""Bars in the warehouse: bulk upsert through COPY, and reads (prices, the newest session and
close, the symbols stored, the sessions some symbols have bars on, when bars last changed,
the dollar volume that sizes stocks).

The upsert streams rows with ``COPY`` into a temporary table, then merges them with
``INSERT … ON CONFLICT (symbol, ts) DO UPDATE … WHERE … IS DISTINCT FROM …``: a row that did
not change is not touched (its ``ingested_at`` stays), so re-loading an interval is a no-op.
All of it happens in the caller's transaction: a crash leaves no partial batch.

When no bar of the batch's symbols is stored yet within the batch's time span (a first load
or a backfill of new history, the bulk of all rows), there is nothing to merge: the rows are
copied straight into ``bars``, which skips the temporary table and the merge (about twice as
fast; see docs/benchmarks.md). A concurrent load of the same keys then fails on the primary key
instead of merging, and its retry takes the merge path.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from pipelines.sources.base import BAR_COLUMNS
from pipelines.warehouse.engine import copy_frame, read_frame

CLOSE_COLUMNS = ["symbol", "session_date", "close"]  # what the close panels are built from
_VALUES = ("session_date", "open", "high", "low", "close", "volume", "source")
_COLUMNS = ("symbol", "ts", *_VALUES)

_MERGE = f"""
INSERT INTO bars ({", ".join(_COLUMNS)})
SELECT {", ".join(_COLUMNS)} FROM bars_incoming
ON CONFLICT (symbol, ts) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _VALUES)}, ingested_at = now()
WHERE ({", ".join(f"bars.{c}" for c in _VALUES)})
      IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in _VALUES)})
"""


def upsert_bars(conn: sa.Connection, frame: pd.DataFrame, source: str) -> int:
    """Merge validated bars into ``bars``; return how many rows were inserted or changed."""
    if frame.empty:
        return 0
    rows = frame[list(BAR_COLUMNS)].assign(source=source)
    if not _any_stored(conn, rows):
        copy_frame(conn, "bars", rows, _COLUMNS)
        return len(rows)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS bars_incoming "
        "(LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    copy_frame(conn, "bars_incoming", rows, _COLUMNS)
    return conn.exec_driver_sql(_MERGE).rowcount


_MINUTE_VALUES = ("open", "high", "low", "close", "volume", "source")
_MINUTE_COLUMNS = ("symbol", "ts", *_MINUTE_VALUES)
_MINUTE_MERGE = f"""
INSERT INTO minute_bars ({", ".join(_MINUTE_COLUMNS)})
SELECT {", ".join(_MINUTE_COLUMNS)} FROM minute_bars_incoming
ON CONFLICT (symbol, ts) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _MINUTE_VALUES)}, ingested_at = now()
WHERE ({", ".join(f"minute_bars.{c}" for c in _MINUTE_VALUES)})
      IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in _MINUTE_VALUES)})
"""


def upsert_minute_bars(conn: sa.Connection, frame: pd.DataFrame, source: str) -> int:
    """Merge validated minute bars into ``minute_bars`` (``ts`` = the minute's end, UTC), as
    :func:`upsert_bars` does for daily bars; return how many rows were inserted or changed."""
    if frame.empty:
        return 0
    rows = frame[["symbol", "ts", "open", "high", "low", "close", "volume"]].assign(source=source)
    if not _any_stored(conn, rows, "minute_bars"):
        copy_frame(conn, "minute_bars", rows, _MINUTE_COLUMNS)
        return len(rows)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS minute_bars_incoming "
        "(LIKE minute_bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    copy_frame(conn, "minute_bars_incoming", rows, _MINUTE_COLUMNS)
    return conn.exec_driver_sql(_MINUTE_MERGE).rowcount


def daily_from_minutes(engine: sa.Engine, day: date, symbols: list[str]) -> pd.DataFrame:
    """The ``daily_from_minute`` view's row of each symbol for session ``day`` (its UTC day:
    a regular NYSE session lies inside one)."""
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                "SELECT symbol, open, high, low, close, volume, minutes FROM daily_from_minute "
                "WHERE day = CAST(:day AS timestamptz) AND symbol = ANY(:s) ORDER BY symbol"
            ),
            conn,
            params={"day": f"{day.isoformat()} 00:00:00+00", "s": list(symbols)},
        )


def _any_stored(conn: sa.Connection, rows: pd.DataFrame, table: str = "bars") -> bool:
    """Whether ``table`` holds any bar of these symbols between their first and last ``ts``."""
    first, last = rows["ts"].min(), rows["ts"].max()
    if pd.isna(first) or pd.isna(last):
        return True  # let the merge path (and its NOT NULL checks) deal with it
    return bool(
        conn.execute(
            sa.text(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE symbol = ANY(:symbols) "
                "AND ts BETWEEN :first AND :last)"
            ),
            {
                "symbols": [s for s in rows["symbol"].unique().tolist() if s is not None],
                "first": first.to_pydatetime(),
                "last": last.to_pydatetime(),
            },
        ).scalar_one()
    )


def read_bars(
    engine: sa.Engine, start: date, end: date, symbols: list[str] | None = None
) -> pd.DataFrame:
    """Bars for sessions in ``[start, end]``, ordered by symbol then time."""
    query = (
        "SELECT symbol, ts, session_date, open, high, low, close, volume FROM bars "
        "WHERE session_date BETWEEN :start AND :end"
    )
    params: dict = {"start": start, "end": end}
    if symbols is not None:
        query += " AND symbol = ANY(:symbols)"
        params["symbols"] = list(symbols)
    with engine.connect() as conn:
        return pd.read_sql(sa.text(query + " ORDER BY symbol, ts"), conn, params=params)


def read_closes(engine: sa.Engine, start: date, end: date, symbols: list[str]) -> pd.DataFrame:
    """Closes (USD) of ``symbols`` as a sessions × symbols panel, sessions in ``[start, end]``:
    a column for each symbol with a close there, a row for each session one of them has.

    The planner reads 500 symbols × 121 sessions at every rebalance: read as a frame
    (:func:`pipelines.warehouse.engine.read_frame`), not through ``pandas.read_sql``, or cut
    from the panel of a store whose bars are frozen (:func:`frozen_closes`).
    """
    panel = _FROZEN.get(engine)
    if panel is not None:
        columns = sorted(set(symbols).intersection(panel.columns))
        window = panel.loc[start:end, columns]
        return window.dropna(axis=1, how="all").dropna(axis=0, how="all")
    return closes_in_windows(engine, symbols, [(start, end)])


def _panel(closes: pd.DataFrame) -> pd.DataFrame:
    """Rows (symbol, session_date, close) as a sessions × symbols panel, both sorted."""
    return closes.pivot(index="session_date", columns="symbol", values="close").sort_index()


#: Every close of a store whose bars nothing writes for a while (:func:`frozen_closes`).
_FROZEN: weakref.WeakKeyDictionary[sa.Engine, pd.DataFrame] = weakref.WeakKeyDictionary()


@contextmanager
def frozen_closes(engine: sa.Engine) -> Iterator[None]:
    """Within the block, :func:`read_closes` on ``engine`` cuts its panel from every close,
    read once at the start, instead of querying. Only for a store whose bars nothing writes
    meanwhile: a backtest's, between loading its bars and dropping it (its replay reads the
    trailing window of 500 symbols at every rebalance)."""
    with engine.connect() as conn:
        bars = read_frame(conn, "SELECT symbol, session_date, close FROM bars", (), CLOSE_COLUMNS)
    _FROZEN[engine] = _panel(bars)
    try:
        yield
    finally:
        _FROZEN.pop(engine, None)


def closes_in_windows(
    engine: sa.Engine, symbols: list[str], windows: Sequence[tuple[date, date]]
) -> pd.DataFrame:
    """Closes (USD) of ``symbols`` as a sessions × symbols panel, sessions in any of the
    ``windows`` ``[start, end]`` (in one read; columns only for symbols with a close)."""
    # The windows as literal ranges, so each partition's session index serves them (a join
    # with an unnested array of windows was planned as a scan of every bar).
    spans = " OR ".join(["session_date BETWEEN %s AND %s"] * len(windows))
    with engine.connect() as conn:
        bars = read_frame(
            conn,
            f"SELECT symbol, session_date, close FROM bars WHERE symbol = ANY(%s) AND ({spans})",
            (list(symbols), *(day for window in windows for day in window)),
            CLOSE_COLUMNS,
        )
    return _panel(bars)


def last_ingested_at(conn: sa.Connection) -> datetime | None:
    """When ``bars`` last changed: its newest ``ingested_at`` (None when it is empty)."""
    return conn.execute(sa.text("SELECT max(ingested_at) FROM bars")).scalar()


def sessions_with_bars(
    conn: sa.Connection, symbols: list[str], start: date, end: date
) -> list[date]:
    """The sessions in ``[start, end]`` where any of ``symbols`` has a bar, in order.

    A skip scan: one probe of the ``session_date`` index per session, not a read of every
    bar in the window (which made each call grow with sessions × symbols). The symbol check
    is a scalar subquery with ``LIMIT 1`` because, written as ``EXISTS``, it was pulled up
    into a semi-join over a scan of every bar of the symbols (230 ms, not 3 ms, for a week
    of 500 symbols × 10 years)."""
    return list(
        conn.execute(
            sa.text("""
                WITH RECURSIVE d(x) AS (
                    SELECT min(session_date) FROM bars WHERE session_date BETWEEN :a AND :b
                    UNION ALL
                    SELECT (SELECT min(session_date) FROM bars
                            WHERE session_date > d.x AND session_date <= :b)
                    FROM d WHERE d.x IS NOT NULL)
                SELECT x FROM d WHERE x IS NOT NULL AND (
                    SELECT true FROM bars WHERE session_date = d.x AND symbol = ANY(:s)
                    LIMIT 1)
                ORDER BY x"""),
            {"a": start, "b": end, "s": symbols},
        ).scalars()
    )


def closes_in_spans(conn: sa.Connection, first: pd.Series, last: pd.Series) -> pd.DataFrame:
    """The closes (symbol, session_date, close; USD) of each symbol in its sessions
    ``[first, last]`` (two series of sessions by symbol, in the same order)."""
    return pd.read_sql(
        sa.text(
            # OFFSET 0 keeps the lateral subquery a probe of each symbol's index: pulled up
            # into a join, it was planned as a parallel scan of every bar (45 ms, not 2 ms).
            "SELECT w.symbol, b.session_date, b.close "
            "FROM unnest(CAST(:s AS text[]), CAST(:a AS date[]), CAST(:b AS date[])) "
            "AS w(symbol, a, b) CROSS JOIN LATERAL (SELECT session_date, close FROM bars "
            "WHERE symbol = w.symbol AND session_date BETWEEN w.a AND w.b OFFSET 0) b"
        ),
        conn,
        params={"s": list(first.index), "a": list(first), "b": list(last)},
    )


def latest_session(conn: sa.Connection, on_or_before: date = date.max) -> date | None:
    """The newest session in ``bars`` on or before ``on_or_before``; None when there is none."""
    return conn.execute(
        sa.text("SELECT max(session_date) FROM bars WHERE session_date <= :d"),
        {"d": on_or_before},
    ).scalar()


def stored_symbols(conn: sa.Connection) -> list[str]:
    """Every symbol with bars, sorted."""
    return list(conn.execute(sa.text("SELECT DISTINCT symbol FROM bars ORDER BY 1")).scalars())


def newest_close_day(conn: sa.Connection) -> date | None:
    """The date of the newest bar's close time (``ts``) in the server's time zone; None when
    ``bars`` is empty."""
    return conn.execute(sa.text("SELECT max(ts)::date FROM bars")).scalar()


def mean_dollar_volume(engine: sa.Engine, start: date, end: date, sessions: int) -> pd.Series:
    """Mean daily dollar volume (close × volume, USD) over each symbol's ``sessions`` bars
    through each date in ``[start, end]``, by (session_date, symbol)."""
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                "SELECT session_date, symbol, dollar_volume FROM ("
                "  SELECT session_date, symbol, avg(close * volume) OVER (PARTITION BY symbol "
                "    ORDER BY session_date ROWS BETWEEN :w PRECEDING AND CURRENT ROW) "
                "    AS dollar_volume FROM bars WHERE session_date BETWEEN :a AND :b) s "
                "WHERE session_date >= :start"
            ),
            conn,
            params={
                "w": sessions - 1,
                "a": start - timedelta(days=2 * sessions),
                "b": end,
                "start": start,
            },
        )
    return frame.set_index(["session_date", "symbol"])["dollar_volume"].astype(float)
