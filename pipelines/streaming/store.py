"""The stream's writes to the warehouse: minute bars (idempotent upsert) and quarantine.

``upsert_minute_bars`` copies a batch into a temporary table and merges it into
``minute_bars`` keyed by ``(symbol, ts)``; a row whose values did not change is not touched,
so the same entry delivered twice (at-least-once bus) leaves exactly one, unchanged row.
``ingested_at`` is ``clock_timestamp()`` at the merge, inside the committing transaction: the
benchmark reads it as the time the row reached the warehouse.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.engine import copy_frame
from pipelines.warehouse.partitions import ensure_partitions

SOURCE = "alpaca_stream"
_VALUES = ("open", "high", "low", "close", "volume", "source")
_COLUMNS = ("symbol", "ts", *_VALUES)
_MERGE = f"""
INSERT INTO minute_bars ({", ".join(_COLUMNS)}, ingested_at)
SELECT {", ".join(_COLUMNS)}, clock_timestamp() FROM minute_bars_incoming
ON CONFLICT (symbol, ts) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _VALUES)}, ingested_at = excluded.ingested_at
WHERE ({", ".join(f"minute_bars.{c}" for c in _VALUES)})
      IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in _VALUES)})
"""


class MinuteBarStore:
    """Writes validated minute bars; remembers which monthly partitions it made sure of."""

    def __init__(self, source: str = SOURCE) -> None:
        self.source = source
        self._months: set[tuple[int, int]] = set()

    def upsert(self, conn: sa.Connection, valid: pd.DataFrame) -> int:
        """Merge ``valid`` (symbol, ts, OHLCV) into ``minute_bars`` in the caller's transaction;
        return the rows inserted or changed."""
        if valid.empty:
            return 0
        self._partitions(conn, valid["ts"])
        self.prepare(conn)
        copy_frame(conn, "minute_bars_incoming", valid.assign(source=self.source), _COLUMNS)
        return int(conn.exec_driver_sql(_MERGE).rowcount)

    def prepare(self, conn: sa.Connection) -> None:
        """The connection's staging table (temporary: one per connection, emptied at commit)."""
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS minute_bars_incoming "
            "(LIKE minute_bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )

    def _partitions(self, conn: sa.Connection, ts: pd.Series) -> None:
        first, last = ts.min(), ts.max()
        months = {(first.year, first.month), (last.year, last.month)}
        if months <= self._months:
            return
        ensure_partitions(conn, "minute_bars", first.date(), last.date())
        self._months |= months


def read_minute_bars(engine: sa.Engine, start: date, end: date) -> pd.DataFrame:
    """Minute bars with ``ts`` in ``[start, end]`` (dates, UTC), ordered by symbol and time."""
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                "SELECT symbol, ts, open, high, low, close, volume, source, ingested_at "
                "FROM minute_bars WHERE ts >= :a AND ts < CAST(:b AS date) + 1 ORDER BY symbol, ts"
            ),
            conn,
            params={"a": start, "b": end},
        )
