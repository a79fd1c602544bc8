"""Universe membership over time: who was a member on a given date.

A row ``(symbol, valid_from, valid_to, source)`` says ``symbol`` was a member on every date of
``[valid_from, valid_to]`` (both inclusive, NYSE session dates; ``valid_to`` None = still a
member). One symbol's intervals never overlap (the database enforces it), so a symbol can
leave and come back as two rows.

Without a vendor's constituent history, :func:`build_from_bars` derives membership from what
the warehouse holds: a symbol is a member from the first to the last session it has bars, and
still a member (``valid_to`` None) if it has bars on the last session any symbol has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.errors import WarehouseError


@dataclass(frozen=True)
class Membership:
    symbol: str
    valid_from: date
    valid_to: date | None  # inclusive; None = still a member
    source: str


def members(conn: sa.Connection, on: date) -> list[str]:
    """Symbols that were members of the universe on ``on``, sorted."""
    return list(
        conn.execute(
            sa.text(
                "SELECT symbol FROM universe WHERE valid_from <= :on "
                "AND (valid_to IS NULL OR valid_to >= :on) ORDER BY symbol"
            ),
            {"on": on},
        ).scalars()
    )


def all_members(conn: sa.Connection) -> list[str]:
    """Every symbol that was ever a member, sorted."""
    return list(conn.execute(sa.text("SELECT DISTINCT symbol FROM universe ORDER BY 1")).scalars())


def upsert(conn: sa.Connection, memberships: Iterable[Membership]) -> int:
    """Insert or update memberships keyed ``(symbol, valid_from)``; return rows changed.

    An interval that overlaps another of the same symbol is refused with a
    :class:`WarehouseError` (nothing of the call is kept if the caller's transaction ends).
    """
    given = list(memberships)
    for m in given:
        if m.valid_to is not None and m.valid_to < m.valid_from:
            raise WarehouseError(
                f"{m.symbol}: valid_to {m.valid_to} is before valid_from {m.valid_from}"
            )
    rows = [{"s": m.symbol, "f": m.valid_from, "t": m.valid_to, "src": m.source} for m in given]
    if not rows:
        return 0
    try:
        with conn.begin_nested():
            result = conn.execute(
                sa.text(
                    "INSERT INTO universe (symbol, valid_from, valid_to, source) "
                    "VALUES (:s, :f, :t, :src) ON CONFLICT (symbol, valid_from) DO UPDATE SET "
                    "valid_to = excluded.valid_to, source = excluded.source, updated_at = now() "
                    "WHERE (universe.valid_to, universe.source) "
                    "IS DISTINCT FROM (excluded.valid_to, excluded.source)"
                ),
                rows,
            )
    except sa.exc.IntegrityError as exc:
        if "universe_no_overlap" not in str(exc.orig):
            raise
        raise WarehouseError(
            f"universe membership overlaps an existing interval of the same symbol: {exc.orig}. "
            "Close the existing interval (set its valid_to) before adding a new one."
        ) from exc
    return result.rowcount


def build_from_bars(conn: sa.Connection, source: str) -> int:
    """Replace the memberships derived from ``bars`` of ``source``; return how many rows.

    Delete-and-insert of the rows tagged ``bars:<source>`` in the caller's transaction, so a
    rerun leaves the table as it was.
    """
    tag = f"bars:{source}"
    conn.execute(sa.text("DELETE FROM universe WHERE source = :tag"), {"tag": tag})
    return conn.execute(
        sa.text(
            """
            INSERT INTO universe (symbol, valid_from, valid_to, source)
            SELECT symbol, min(session_date),
                   CASE WHEN max(session_date) = (SELECT max(session_date) FROM bars
                                                   WHERE source = :source)
                        THEN NULL ELSE max(session_date) END,
                   :tag
              FROM bars WHERE source = :source
             GROUP BY symbol
            """
        ),
        {"source": source, "tag": tag},
    ).rowcount
