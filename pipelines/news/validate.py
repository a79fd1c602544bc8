"""Quarantine rules for news items: what is stored, what is set aside and why.

Rules (``expectation`` codes, as in the bars' quarantine table):

=====================  ==============================================================
code                   an item is quarantined when
=====================  ==============================================================
news_missing_time      the vendor gave no publication time
news_bad_time          the time cannot be read as ISO-8601
news_time_without_zone the time has no zone: a guess could move it across the cutoff
news_future_time       published more than ``FUTURE_TOLERANCE`` after it was retrieved
news_empty_text        headline, summary and body are all blank
news_unknown_symbols   no universe ticker: vendor tags outside it, no cashtag or name
news_conflicting_dup   a second copy of one (source, id) in a batch with other content
=====================  ==============================================================

Cleaned, not quarantined: NUL characters and unpaired surrogates are removed (PostgreSQL's
text cannot hold them; what remains is readable), a body longer than ``MAX_BODY_CHARS`` is cut
there, lower-case vendor tags are upper-cased. Items published outside the requested window
are skipped, not quarantined: the run whose window holds them stores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pipelines.news import NewsItem, RawItem
from pipelines.news.matcher import SymbolMatcher

FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_BODY_CHARS = 100_000
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Rejected:
    """A quarantined item: the raw record, the rule's code and a one-line reason."""

    raw: RawItem
    expectation: str
    reason: str


@dataclass
class Checked:
    """The outcome of :func:`check`: items to store, items quarantined, items skipped."""

    items: list[NewsItem]
    rejected: list[Rejected]
    out_of_window: int = 0


def clean_text(text: str | None) -> str:
    """``text`` without NUL characters or unpaired surrogates, stripped."""
    return _UNSAFE.sub("", text or "").strip()


def parse_time(value: datetime | str | None) -> tuple[datetime | None, str | None]:
    """(UTC time, None) or (None, expectation code) for a vendor's publication time."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "news_missing_time"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, "news_bad_time"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, "news_time_without_zone"
    return value.astimezone(UTC), None


_REASONS = {
    "news_missing_time": "the vendor gave no publication time; nothing can place it before or "
    "after a cutoff",
    "news_bad_time": "the publication time {value!r} is not ISO-8601",
    "news_time_without_zone": "the publication time {value!r} states no time zone; fix the "
    "vendor mapping rather than guess one",
    "news_future_time": "published at {value} UTC, after it was retrieved ({retrieved} UTC)",
    "news_empty_text": "headline, summary and body are empty",
    "news_unknown_symbols": "no universe symbol matched (vendor tags outside the universe: "
    "{value}); add the symbol to UNIVERSE or ignore",
    "news_conflicting_dup": "a second copy of {value} in this batch has different content; the "
    "first copy was kept",
}


def _reject(raw: RawItem, code: str, **facts: object) -> Rejected:
    return Rejected(raw, code, f"{raw.source}:{raw.item_id}: " + _REASONS[code].format(**facts))


def check(
    raws: list[RawItem],
    matcher: SymbolMatcher,
    retrieved_at: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Checked:
    """Split ``raws`` into valid items (in ``[start, end)``) and quarantined ones."""
    out = Checked([], [])
    seen: dict[tuple[str, str], NewsItem] = {}
    for raw in raws:
        item_or_rejection = _one(raw, matcher, retrieved_at)
        if isinstance(item_or_rejection, Rejected):
            out.rejected.append(item_or_rejection)
            continue
        item = item_or_rejection
        if (start and item.published_at < start) or (end and item.published_at >= end):
            out.out_of_window += 1
            continue
        key = (item.source, item.item_id)
        if key in seen:
            if seen[key].content_hash != item.content_hash:
                out.rejected.append(_reject(raw, "news_conflicting_dup", value=":".join(key)))
            continue
        seen[key] = item
        out.items.append(item)
    return out


def _one(raw: RawItem, matcher: SymbolMatcher, retrieved_at: datetime) -> NewsItem | Rejected:
    published, problem = parse_time(raw.published)
    if problem:
        return _reject(raw, problem, value=raw.published)
    assert published is not None
    if published > retrieved_at + FUTURE_TOLERANCE:
        return _reject(raw, "news_future_time", value=published, retrieved=retrieved_at)
    headline, summary = clean_text(raw.headline), clean_text(raw.summary)
    body = clean_text(raw.body)[:MAX_BODY_CHARS]
    if not (headline or summary or body):
        return _reject(raw, "news_empty_text")
    symbols, unknown = matcher.match(raw.vendor_symbols, f"{headline}\n{summary}\n{body}")
    if not symbols:
        return _reject(raw, "news_unknown_symbols", value=", ".join(unknown) or "none")
    updated, _ = parse_time(raw.updated)
    return NewsItem(
        source=raw.source,
        item_id=clean_text(raw.item_id),
        kind=raw.kind,
        published_at=published,
        retrieved_at=retrieved_at,
        symbols=symbols,
        headline=headline,
        summary=summary,
        body=body,
        url=clean_text(raw.url) or None,
        author=clean_text(raw.author) or None,
        updated_at=updated,
    )


def as_record(raw: RawItem) -> dict:
    """A JSON-able copy of a raw item for the quarantine table (body cut to 2,000 chars)."""
    record = replace(raw, body=raw.body[:2000])
    return {k: _jsonable(v) for k, v in vars(record).items()}


def _jsonable(value: object) -> object:
    # jsonb refuses \u0000 and unpaired surrogates as text refuses them.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return _UNSAFE.sub("", value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
