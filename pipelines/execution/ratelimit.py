"""A thread-safe token bucket: at most ``rate_per_minute`` requests a minute, bursts of ``burst``.

Alpaca allows about 200 requests a minute per account; the broker adapter takes one token
before every HTTP request (a retry too) and stays under ``BROKER_RATE_LIMIT_PER_MINUTE``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``acquire()`` blocks until a token is free; tokens refill continuously."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("rate_per_minute must be > 0 and burst >= 1")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = burst
        self._tokens = float(burst)
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
