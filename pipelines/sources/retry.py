"""The transient-error policy every vendor source shares.

Only *transient* failures are retried: HTTP 429 and 5xx, timeouts, refused or reset
connections, and a body cut off mid-way. A 4xx other than 429 (bad credentials, unknown
symbol, bad parameters) is never retried: asking again cannot fix it. Waits grow exponentially
with random jitter (``initial_wait * 2**n`` plus up to ``initial_wait`` of jitter, capped at
``max_wait``); a 429's ``Retry-After`` / ``X-RateLimit-Reset`` hint lengthens the wait (never
beyond ``max_wait``). Attempts are bounded by ``attempts`` in total, first try included, and
the vendor libraries' own retries are switched off so this bound is the real one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pipelines.config import Settings
from pipelines.errors import DataSourceError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransientSourceError(DataSourceError):
    """A failure worth retrying (429, 5xx, timeout, connection reset, truncated body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``attempts`` in total, waits in seconds."""

    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.source_retry_attempts,
            initial_wait=settings.source_retry_initial_wait_s,
            max_wait=settings.source_retry_max_wait_s,
        )

    def _wait(self, state: RetryCallState) -> float:
        base = wait_exponential_jitter(
            initial=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = getattr(exc, "retry_after", None)
        if hint:
            base = max(base, float(hint))
        return min(base, self.max_wait)

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` with transient failures retried; a permanent one is raised at once.

        After the last attempt a :class:`DataSourceError` says what failed and how often.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(TransientSourceError),
            reraise=True,
            before_sleep=lambda s: log.warning(
                "transient source error what=%s attempt=%s error=%s",
                what,
                s.attempt_number,
                s.outcome.exception() if s.outcome else None,
            ),
        )
        try:
            return retrying(fn)
        except TransientSourceError as exc:
            raise DataSourceError(
                f"{what}: still failing after {self.attempts} attempts ({exc}); the vendor is "
                "down or rate-limiting us: rerun later, or lower the *_REQUESTS_PER_MINUTE setting"
            ) from exc
