"""A thread-safe token bucket that keeps our request rate under a vendor's limit.

Alpaca allows about 200 requests a minute per account (market data and trading each); Yahoo
publishes no limit and answers 429 when crowded, so a conservative rate is configured for it.
Every HTTP request a source or the broker adapter makes (each page and each retry included)
takes one token first. Buckets are per process: several processes (Airflow workers) each get
their own, so size the rate settings for the number of concurrent workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate_per_minute`` tokens a minute, refilled continuously, bursts of at most ``burst``
    (default: one second's worth, at least 1).

    ``acquire`` blocks (sleeps, without holding the lock) until a token is free. The clock and
    the sleep are injectable so tests drive the bucket without waiting.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        burst = max(1.0, rate_per_minute / 60.0) if burst is None else burst
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError(
                f"rate_per_minute must be > 0 and burst >= 1, got {rate_per_minute} and {burst}"
            )
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for metrics and benchmarks

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, waiting as long as needed; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                # The tolerance: float rounding must not leave a waiter short by 1e-16 forever.
                if self._tokens >= tokens - 1e-9:
                    self._tokens = max(0.0, self._tokens - tokens)
                    self.waited += waited
                    return waited
                pause = (tokens - self._tokens) / self.rate
            self._sleep(pause)
            waited += pause


_BUCKETS: dict[tuple[str, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket_for(vendor: str, rate_per_minute: float) -> TokenBucket:
    """The process-wide bucket of ``vendor`` at that rate: sources of one vendor share it."""
    with _BUCKETS_LOCK:
        key = (vendor, float(rate_per_minute))
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(rate_per_minute)
        return _BUCKETS[key]
