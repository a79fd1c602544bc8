"""The news repository: every SQL statement about ``news_items`` and ``news_scores``.

Idempotent: an item is inserted once per (source, item_id); a second fetch with the same
content changes nothing (``retrieved_at`` stays the first fetch's); a copy with other content
replaces the stored one only when the vendor's ``updated_at`` is newer, else it is quarantined
(``news_conflicting_dup``) and the stored copy is kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from pipelines.news import NewsItem
from pipelines.news.validate import Rejected, as_record

_COLUMNS = (
    "source",
    "item_id",
    "kind",
    "published_at",
    "updated_at",
    "retrieved_at",
    "symbols",
    "headline",
    "summary",
    "body",
    "url",
    "author",
    "content_hash",
    "story_key",
)


@dataclass
class Upserted:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0


def _row(item: NewsItem) -> dict:
    return {
        **{c: getattr(item, c) for c in _COLUMNS if c not in ("symbols",)},
        "symbols": list(item.symbols),
    }


def upsert_items(conn: sa.Connection, items: Sequence[NewsItem], run_id: str) -> Upserted:
    """Store ``items`` (see module docstring); conflicting copies go to quarantine."""
    out = Upserted()
    if not items:
        return out
    stored = {
        (s, i): (h, u)
        for s, i, h, u in conn.execute(
            sa.text(
                "SELECT source, item_id, content_hash, updated_at FROM news_items "
                "WHERE (source, item_id) IN (SELECT * FROM unnest(CAST(:s AS text[]), "
                "CAST(:i AS text[])))"
            ),
            {"s": [x.source for x in items], "i": [x.item_id for x in items]},
        )
    }
    fresh, newer, conflicts = [], [], []
    for item in items:
        old = stored.get((item.source, item.item_id))
        if old is None:
            fresh.append(item)
        elif old[0] == item.content_hash:
            out.unchanged += 1
        elif item.updated_at is not None and (old[1] is None or item.updated_at > old[1]):
            newer.append(item)
        else:
            conflicts.append(item)
    names = ", ".join(_COLUMNS)
    values = ", ".join(f":{c}" for c in _COLUMNS)
    if fresh:
        conn.execute(
            sa.text(f"INSERT INTO news_items ({names}) VALUES ({values})"),
            [_row(i) for i in fresh],
        )
    if newer:
        sets = ", ".join(f"{c} = :{c}" for c in _COLUMNS if c not in ("source", "item_id"))
        conn.execute(
            sa.text(f"UPDATE news_items SET {sets} WHERE source = :source AND item_id = :item_id"),
            [_row(i) for i in newer],
        )
    quarantine_conflicts(conn, conflicts, run_id)
    out.inserted, out.updated, out.conflicts = len(fresh), len(newer), len(conflicts)
    return out


def quarantine_conflicts(conn: sa.Connection, items: Iterable[NewsItem], run_id: str) -> None:
    from pipelines.news import RawItem

    rejected = [
        Rejected(
            RawItem(
                i.source,
                i.item_id,
                i.kind,
                i.published_at,
                i.headline,
                i.summary,
                i.body,
                i.url,
                i.author,
                i.symbols,
                i.updated_at,
            ),
            "news_conflicting_dup",
            f"{i.source}:{i.item_id}: stored with other content and this copy is not a newer "
            "vendor update; the stored copy was kept",
        )
        for i in items
    ]
    quarantine(conn, rejected, run_id)


def quarantine(conn: sa.Connection, rejected: Sequence[Rejected], run_id: str) -> int:
    """Add quarantine rows (the bars' ``quarantine`` table, source ``news:<source>``);
    a rerun adds nothing. Returns rows offered."""
    rows = []
    for r in rejected:
        raw = json.dumps(as_record(r.raw), sort_keys=True, default=str)
        source = f"news:{r.raw.source}"
        digest = hashlib.sha256(f"{source}\x1f{raw}\x1f{r.expectation}".encode()).hexdigest()
        symbol = r.raw.vendor_symbols[0][:32] if r.raw.vendor_symbols else None
        rows.append(
            {
                "h": digest,
                "s": source,
                "sym": symbol,
                "e": r.expectation,
                "r": r.reason,
                "raw": raw,
                "run": run_id,
            }
        )
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO quarantine (row_hash, source, symbol, expectation, reason, raw, "
                "run_id) VALUES (:h, :s, :sym, :e, :r, CAST(:raw AS jsonb), :run) "
                "ON CONFLICT (row_hash) DO NOTHING"
            ),
            rows,
        )
    return len(rows)


def unscored(
    conn: sa.Connection,
    scorer: str,
    version: str,
    start: datetime,
    end: datetime,
    max_chars: int | None = None,
) -> list[tuple[str, str, str, str]]:
    """(source, item_id, content_hash, text) of items published in ``[start, end)`` with no
    current score from ``scorer`` (none yet, another version, or changed content); ``text``
    cut to its first ``max_chars`` characters when given (what the scorer reads)."""
    text = (
        "concat_ws(E'\\n\\n', nullif(n.headline, ''), nullif(n.summary, ''), "
        "nullif(n.body, ''))"
    )
    if max_chars is not None:
        text = f"left({text}, {int(max_chars)})"
    rows = conn.execute(
        sa.text(
            f"SELECT n.source, n.item_id, n.content_hash, {text} "
            "FROM news_items n LEFT JOIN news_scores s ON "
            "s.source = n.source AND s.item_id = n.item_id AND s.scorer = :scorer "
            "WHERE n.published_at >= :a AND n.published_at < :b AND (s.score IS NULL "
            "OR s.scorer_version <> :v OR s.content_hash <> n.content_hash) "
            "ORDER BY n.source, n.item_id"
        ),
        {"scorer": scorer, "v": version, "a": start, "b": end},
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def write_scores(
    conn: sa.Connection,
    scorer: str,
    version: str,
    keys: Sequence[tuple[str, str, str]],
    scores: Sequence[float],
) -> None:
    """Upsert one score per (source, item_id, content_hash) key, in one statement (arrays
    unnested server-side: one round trip for the batch, not one per row)."""
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} keys but {len(scores)} scores")
    if not keys:
        return
    conn.execute(
        sa.text(
            "INSERT INTO news_scores (source, item_id, scorer, scorer_version, content_hash, "
            "score) SELECT u.s, u.i, :scorer, :v, u.h, u.x FROM unnest(CAST(:s AS text[]), "
            "CAST(:i AS text[]), CAST(:h AS text[]), CAST(:x AS double precision[])) "
            "AS u(s, i, h, x) ON CONFLICT (source, item_id, scorer) DO UPDATE SET "
            "scorer_version = EXCLUDED.scorer_version, content_hash = EXCLUDED.content_hash, "
            "score = EXCLUDED.score"
        ),
        {
            "scorer": scorer,
            "v": version,
            "s": [k[0] for k in keys],
            "i": [k[1] for k in keys],
            "h": [k[2] for k in keys],
            "x": [float(x) for x in scores],
        },
    )


def scored_items(
    conn: sa.Connection, start: datetime, end: datetime, scorers: Sequence[str]
) -> pd.DataFrame:
    """One row per (story, symbol) published in ``[start, end)``: syndicated copies collapse
    to the earliest (ties: source, item_id); columns published_at, symbol, and one score column
    per scorer (NaN when unscored)."""
    score_cols = ", ".join(
        f"max(s.score) FILTER (WHERE s.scorer = '{name}') AS score_{name}" for name in scorers
    )
    frame = pd.read_sql(
        sa.text(
            "WITH first AS (SELECT DISTINCT ON (story_key) source, item_id, published_at, "
            "symbols FROM news_items WHERE published_at >= :a AND published_at < :b "
            "ORDER BY story_key, published_at, source, item_id) "
            f"SELECT f.published_at, unnest(f.symbols) AS symbol, {score_cols} FROM first f "
            "LEFT JOIN news_scores s ON s.source = f.source AND s.item_id = f.item_id "
            "GROUP BY f.source, f.item_id, f.published_at, f.symbols"
        ),
        conn,
        params={"a": start, "b": end},
    )
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    return frame


def fingerprint(conn: sa.Connection, start: datetime, end: datetime) -> str:
    """sha256 of what the store holds for items published in ``[start, end)`` (items, their
    scores), leaving out ``retrieved_at``: two runs over one range agree on it."""
    rows = conn.execute(
        sa.text(
            "SELECT n.source, n.item_id, n.published_at, n.symbols, n.content_hash, "
            "coalesce(json_agg(json_build_array(s.scorer, s.scorer_version, "
            "round(s.score::numeric, 12)) "
            "ORDER BY s.scorer) FILTER (WHERE s.scorer IS NOT NULL), '[]') "
            "FROM news_items n LEFT JOIN news_scores s USING (source, item_id) "
            "WHERE n.published_at >= :a AND n.published_at < :b "
            "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2"
        ),
        {"a": start, "b": end},
    ).all()
    return hashlib.sha256(json.dumps([list(r) for r in rows], default=str).encode()).hexdigest()
