"""Shared pieces of the Alpaca tests: sample bars served by the local Alpaca server."""

from __future__ import annotations

from datetime import date

from pipelines.ratelimit import TokenBucket
from pipelines.sources.alpaca import AlpacaSource
from pipelines.sources.retry import RetryPolicy
from tests.support.alpaca_data_server import AlpacaDataServer, sample_bars

SYMBOLS = ["A", "AAPL", "IBM"]
START, END = date(2010, 1, 4), date(2010, 1, 29)  # 19 sessions: 57 bars, 3 pages of 20
KEY, SECRET = "test-key", "test-secret-do-not-log"


def server() -> AlpacaDataServer:
    return AlpacaDataServer({"1Day": sample_bars(SYMBOLS, START, END)}, KEY, SECRET)


def source(url: str, attempts: int = 3, timeout_s: float = 5.0) -> AlpacaSource:
    """A source with ~0 s backoff and no rate limit to speak of: tests stay fast."""
    return AlpacaSource(
        KEY,
        SECRET,
        url=url,
        retry=RetryPolicy(attempts=attempts, initial_wait=0.0, max_wait=0.0),
        bucket=TokenBucket(1_000_000),
        timeout_s=timeout_s,
        page_limit=20,
    )
