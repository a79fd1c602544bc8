"""A token bucket that keeps our request rate under a vendor's limit.

Alpaca allows about 200 data requests per minute per account; Yahoo publishes no limit and
answers 429 when it feels crowded, so a conservative rate is configured for it. Every HTTP
request a source makes (each page of a paginated answer included) takes one token first.
Buckets are per vendor and per process (:func:`bucket_for`): two sources of the same vendor in
one process share the account's budget. Several processes (Airflow workers) each get their own
bucket, so size the rate setting for the number of concurrent workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate_per_minute`` tokens per minute, bursts of at most ``capacity`` tokens.

    ``acquire`` blocks (sleeps) until a token is available. The clock and the sleep are
    injectable so tests can drive the bucket without waiting.
    """

    def __init__(
        self,
        rate_per_minute: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, got {rate_per_minute}")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = float(capacity if capacity is not None else max(1.0, rate_per_minute / 60))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(
            self.capacity, self._tokens + (now - self._updated) * self.rate_per_second
        )
        self._updated = now

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; return the seconds slept."""
        slept = 0.0
        with self._lock:  # held while sleeping: waiting callers queue up in order
            self._refill()
            while self._tokens < 1.0 - 1e-9:  # tolerance: float sums can stop just short of 1
                wait = (1.0 - self._tokens) / self.rate_per_second
                self._sleep(wait)
                slept += wait
                self._refill()
            self._tokens -= 1.0
        return slept


_BUCKETS: dict[tuple[str, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket_for(vendor: str, rate_per_minute: float) -> TokenBucket:
    """The process-wide bucket of ``vendor`` at that rate."""
    with _BUCKETS_LOCK:
        key = (vendor, float(rate_per_minute))
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(rate_per_minute)
        return _BUCKETS[key]
