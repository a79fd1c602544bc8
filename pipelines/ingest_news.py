"""The news stage: collect each source's window, check, store, quarantine, score, features.

One call handles ``[start, end)`` (UTC publication times) for the given sources. Each source
is stored in its own transaction: a source that fails (after its retries) loses nothing the
others brought, and the run then fails with one line naming each failed source. Sentiment
features are rebuilt for the sessions whose cutoff falls in ``(start, end]``: everything
published before such a cutoff is in this or an earlier window, so a backfill of consecutive
windows writes what one run over their union writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import DataSourceError, MltradeError
from pipelines.monitoring import metrics
from pipelines.news import store, validate
from pipelines.news.matcher import SymbolMatcher, sample_company_names
from pipelines.news.scoring import Scorer, get_scorers
from pipelines.news.sources import get_news_source
from pipelines.runlog import stage_run
from pipelines.warehouse.bars import stored_symbols
from pipelines.warehouse.universe import all_members

log = logging.getLogger(__name__)
SCORE_BATCH = 5_000


@dataclass
class SourceSummary:
    source: str
    status: str = "ok"  # ok | skipped | failed
    collected: int = 0
    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    out_of_window: int = 0
    matched_share: float = 0.0
    error: str = ""
    reasons: dict[str, int] = field(default_factory=dict)


def universe_symbols(engine: sa.Engine, settings: Settings) -> list[str]:
    """``UNIVERSE``, else the ``universe`` table's symbols, else the symbols with bars."""
    if settings.universe:
        return list(settings.universe)
    with engine.connect() as conn:
        return all_members(conn) or stored_symbols(conn)


def sessions_with_cutoff_in(start: datetime, end: datetime) -> list[date]:
    """Sessions whose sentiment cutoff falls in ``(start, end]``."""
    from pipelines.features.sentiment import cutoff

    days = calendar.sessions(start.date() - timedelta(days=1), end.date() + timedelta(days=1))
    return [d for d in days if start < cutoff(d) <= end]


def run_news(
    engine: sa.Engine,
    settings: Settings,
    sources: Sequence[str],
    start: datetime,
    end: datetime,
    run_id: str,
    scorers: Sequence[Scorer] | None = None,
    symbols: list[str] | None = None,
) -> dict:
    """Collect, check, store and score ``[start, end)`` from ``sources``; rebuild the sentiment
    features of the sessions whose cutoff is in the window. Returns a JSON-able summary."""
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise MltradeError(f"news window [{start}, {end}) must be UTC-aware and non-empty")
    with stage_run(engine, run_id, "news", start=start, end=end, sources=list(sources)) as run:
        universe = symbols or universe_symbols(engine, settings)
        if not universe:
            raise MltradeError("no universe to match news against: set UNIVERSE or ingest bars")
        matcher = SymbolMatcher(universe, sample_company_names())
        summaries = [
            _one_source(engine, settings, name, start, end, universe, matcher, run_id)
            for name in sources
        ]
        scored = score_window(engine, scorers or get_scorers(), start, end)
        from pipelines.features.store import build_sentiment_features

        sessions = sessions_with_cutoff_in(start, end)
        features = (
            build_sentiment_features(engine, sessions[0], sessions[-1], run_id) if sessions else 0
        )
        run.summary = {
            "sources": [asdict(s) for s in summaries],
            "scored": scored,
            "feature_rows": features,
            "sessions": [d.isoformat() for d in sessions],
        }
        failed = [s for s in summaries if s.status == "failed"]
        if failed:
            raise DataSourceError(
                "news sources failed (what the others brought is stored): "
                + "; ".join(f"{s.source}: {s.error}" for s in failed)
            )
    return run.summary


def _one_source(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    start: datetime,
    end: datetime,
    universe: list[str],
    matcher: SymbolMatcher,
    run_id: str,
) -> SourceSummary:
    summary = SourceSummary(name)
    try:
        source = get_news_source(settings, name)
        if source is None:
            summary.status = "skipped"
            return summary
        retrieved_at = datetime.now(UTC)  # a fact about the fetch, never a filter
        collected = source.collect(start, end, universe)
    except DataSourceError as exc:
        summary.status, summary.error = "failed", str(exc).splitlines()[0][:500]
        metrics.record_news_source_error(name)
        log.error("news source failed source=%s error=%s", name, summary.error)
        return summary
    checked = validate.check(collected.items, matcher, retrieved_at, start, end)
    with engine.begin() as conn:
        upserted = store.upsert_items(conn, checked.items, run_id)
        store.quarantine(conn, checked.rejected, run_id)
    summary.collected = len(collected.items)
    summary.stored, summary.updated = upserted.inserted, upserted.updated
    summary.unchanged, summary.out_of_window = upserted.unchanged, checked.out_of_window
    summary.quarantined = len(checked.rejected) + upserted.conflicts
    for r in checked.rejected:
        summary.reasons[r.expectation] = summary.reasons.get(r.expectation, 0) + 1
    if upserted.conflicts:
        summary.reasons["news_conflicting_dup"] = (
            summary.reasons.get("news_conflicting_dup", 0) + upserted.conflicts
        )
    in_window = len(collected.items) - checked.out_of_window
    summary.matched_share = round(len(checked.items) / in_window, 6) if in_window else 0.0
    metrics.record_news_collection(
        name,
        len(checked.items),
        summary.quarantined,
        summary.matched_share,
        required=name in settings.news_required_sources,
    )
    return summary


def score_window(
    engine: sa.Engine, scorers: Sequence[Scorer], start: datetime, end: datetime
) -> dict[str, int]:
    """Score every item of ``[start, end)`` a scorer has no current score for.

    A scorer with a ``max_chars`` attribute is sent only that many characters of each text
    (the database cuts them). Each scorer gets the window's texts in one call (so it can drop
    repeated texts and spread the work over processes); the scores are written
    :data:`SCORE_BATCH` rows a statement.
    """
    done: dict[str, int] = {}
    for scorer in scorers:
        with engine.connect() as conn:
            todo = store.unscored(
                conn, scorer.name, scorer.version, start, end, getattr(scorer, "max_chars", None)
            )
        began = time.perf_counter()
        scores = scorer.score([t[3] for t in todo])
        if todo:
            metrics.record_news_scoring(scorer.name, len(todo), time.perf_counter() - began)
        with engine.begin() as conn:
            for i in range(0, len(todo), SCORE_BATCH):
                batch = todo[i : i + SCORE_BATCH]
                store.write_scores(
                    conn,
                    scorer.name,
                    scorer.version,
                    [t[:3] for t in batch],
                    scores[i : i + SCORE_BATCH],
                )
        done[scorer.name] = len(todo)
    return done
