"""How long the broker path waits before retrying a transient failure, and when it stops.

Waits double from ``BROKER_BACKOFF_SECONDS`` (capped at ``BROKER_BACKOFF_MAX_SECONDS``); a
429's ``Retry-After`` (seconds, or an HTTP date) lengthens the wait to what the broker asked
for, as the data sources do (:mod:`pipelines.sources.retry`). The total wait of one request
(one read, or one order's sends) is bounded by ``BROKER_MAX_WAIT_SECONDS``: when the next
wait would pass it, the caller stops and fails (a rerun resumes), rather than sleep past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pipelines.config import Settings


@dataclass(frozen=True)
class BrokerBackoff:
    """Waits in seconds."""

    initial: float = 0.5
    cap: float = 8.0
    budget: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerBackoff:
        return cls(
            settings.broker_backoff_seconds,
            settings.broker_backoff_max_seconds,
            settings.broker_max_wait_seconds,
        )

    def pause(self, attempt: int, retry_after: float | None, waited: float) -> float | None:
        """Seconds to wait after failed ``attempt`` (1-based), having waited ``waited``
        already; None when that wait would pass the budget (stop retrying)."""
        pause = min(self.cap, self.initial * 2 ** (attempt - 1))
        if retry_after is not None:
            pause = max(pause, retry_after)
        return None if waited + pause > self.budget else pause


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date); None if absent or
    unreadable. A date in the past is 0."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
