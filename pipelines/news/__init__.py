"""News and social sentiment: collectors, the news store, scorers and point-in-time features.

The path of an item::

    collector (alpaca | newsapi | reddit | fixtures)      -> RawItem (as the vendor said it)
      -> validate (quarantine rules, symbol matcher)   -> NewsItem | quarantine row
      -> news_items (upsert on (source, item_id))      -> news_scores (one row per scorer)
      -> sentiment feature set (features, per symbol and session, before the cutoff)

Conventions: every time is a timezone-aware UTC ``datetime``; ``published_at`` is the
vendor's own publication time converted to UTC (an item whose time has no stated zone is
quarantined, never guessed); ``symbols`` are upper-case tickers of the universe.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

KINDS = ("article", "submission", "comment")


@dataclass(frozen=True)
class RawItem:
    """One article or post exactly as a vendor returned it (not yet trusted).

    ``published`` is the vendor's publication time: a ``datetime`` (maybe naive, if the vendor
    left out the zone), an ISO-8601 string, or None when the vendor gave none.
    """

    source: str
    item_id: str
    kind: str
    published: datetime | str | None
    headline: str
    summary: str = ""
    body: str = ""
    url: str | None = None
    author: str | None = None
    vendor_symbols: tuple[str, ...] = ()
    updated: datetime | str | None = None


@dataclass(frozen=True)
class NewsItem:
    """A validated item: UTC publication time, universe symbols, text, content hash."""

    source: str
    item_id: str
    kind: str
    published_at: datetime
    retrieved_at: datetime
    symbols: tuple[str, ...]
    headline: str
    summary: str
    body: str
    url: str | None
    author: str | None
    updated_at: datetime | None = None

    @property
    def text(self) -> str:
        """What scorers read: headline, summary and body joined by blank lines."""
        return "\n\n".join(t for t in (self.headline, self.summary, self.body) if t)

    @property
    def content_hash(self) -> str:
        """sha256 of the text fields and the URL: two fetches of one story agree on it."""
        parts = (self.headline, self.summary, self.body, self.url or "")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    @property
    def story_key(self) -> str:
        """The syndication key: a hash of the headline's lower-case words and the UTC day of
        publication, so one wire story published by several outlets (or sources) that day is
        counted once in the features, while "Apple shares rise" next week is a new story. A
        headline of fewer than :data:`STORY_MIN_WORDS` words (a comment has none) is its own
        story."""
        return story_key(
            self.headline, f"{self.source}:{self.item_id}", self.published_at.date()
        )


STORY_MIN_WORDS = 4


def story_key(headline: str, identity: str, day: date | None = None) -> str:
    """The syndication key of a headline on ``day`` (``identity`` when it is too short)."""
    words = re.findall(r"[a-z0-9]+", headline.lower())
    text = " ".join(words) if len(words) >= STORY_MIN_WORDS else "\x00" + identity
    text += f"\x00{day.isoformat()}" if day else ""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Collected:
    """What a collector brought back: items, and per-request errors it survived."""

    items: list[RawItem] = field(default_factory=list)
    requests: int = 0


class NewsSource(Protocol):
    """A collector of articles or posts (``alpaca``, ``newsapi``, ``reddit``, ``fixtures``)."""

    name: str

    def collect(self, start: datetime, end: datetime, symbols: list[str]) -> Collected:
        """Items published in ``[start, end)`` (UTC) about ``symbols`` (the universe)."""
        ...
