"""Streamed news articles into the news store, by the batch collector's rules.

A bus entry of kind ``n`` holds one Alpaca article as the news stream sent it. A batch of them
is read as the batch collector reads Alpaca's REST articles
(:func:`pipelines.news.sources.alpaca.raw_item`: source ``alpaca``, the vendor's id), so an
article seen live and again by the next batch run is one row. Then the same path as the news
stage: :func:`pipelines.news.validate.check` (quarantine rules, symbol matcher), then
:func:`pipelines.news.store.upsert_items` and :func:`pipelines.news.store.quarantine` in one
transaction, then the stored items are scored (:func:`pipelines.ingest_news.score_window`
over the batch's publication times). Everything is keyed and upserted, so a redelivered entry
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipelines.news import store, validate
from pipelines.news.matcher import SymbolMatcher, sample_company_names
from pipelines.news.scoring import Scorer, get_scorers
from pipelines.news.sources.alpaca import raw_item

log = logging.getLogger(__name__)


@dataclass
class NewsBatch:
    """What one batch of streamed articles became."""

    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    scored: int = 0


class NewsSink:
    """Checks, stores and scores streamed articles for one universe."""

    def __init__(
        self,
        engine: sa.Engine,
        symbols: Sequence[str],
        run_id: str,
        scorers: Sequence[Scorer] | None = None,
    ) -> None:
        self.engine, self.run_id = engine, run_id
        self.matcher = SymbolMatcher(list(symbols), sample_company_names())
        # In-process: a stream batch is small, and this process has threads (parallel.py).
        self.scorers = list(scorers) if scorers is not None else get_scorers(workers=1)

    def handle(self, articles: Sequence[dict]) -> NewsBatch:
        """Store ``articles`` (Alpaca stream payloads) and score what was stored."""
        from pipelines.ingest_news import score_window

        out = NewsBatch()
        if not articles:
            return out
        checked = validate.check([raw_item(a) for a in articles], self.matcher, datetime.now(UTC))
        with self.engine.begin() as conn:
            upserted = store.upsert_items(conn, checked.items, self.run_id)
            store.quarantine(conn, checked.rejected, self.run_id)
        out.stored, out.updated, out.unchanged = (
            upserted.inserted,
            upserted.updated,
            upserted.unchanged,
        )
        out.quarantined = len(checked.rejected) + upserted.conflicts
        if checked.items:
            times = [i.published_at for i in checked.items]
            done = score_window(
                self.engine, self.scorers, min(times), max(times) + timedelta(microseconds=1)
            )
            out.scored = max(done.values(), default=0)
        if out.quarantined:
            log.warning(
                "event=stream_news_quarantine items=%d rules=%s",
                out.quarantined,
                ",".join(sorted({r.expectation for r in checked.rejected})) or "conflicting_dup",
            )
        return out
