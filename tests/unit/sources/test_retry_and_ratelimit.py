"""The shared transient-error policy and the token bucket, on a fake clock."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState, Retrying

from pipelines.config import Settings
from pipelines.errors import DataSourceError
from pipelines.ratelimit import TokenBucket, bucket_for
from pipelines.sources.retry import RetryPolicy, TransientSourceError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, clock=clock, sleep=clock.sleep)  # Alpaca: 200 requests/min
    assert bucket.burst == pytest.approx(200 / 60)
    for _ in range(203):
        bucket.acquire()
    # A burst of 3.33 tokens, then one every 0.3 s: (203 - 3.33) tokens take 59.9 s.
    assert clock.now == pytest.approx((203 - 200 / 60) * 0.3, rel=1e-9)
    assert max(clock.slept) == pytest.approx(0.3)


def test_bucket_refills_while_idle_but_never_above_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=2, clock=clock, sleep=clock.sleep)
    bucket.acquire(), bucket.acquire()
    clock.now += 3600  # an hour idle: still only 2 tokens
    assert bucket.acquire() == 0.0 and bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(1.0)


def test_buckets_are_shared_per_vendor_and_rate() -> None:
    assert bucket_for("alpaca", 200) is bucket_for("alpaca", 200)
    assert bucket_for("alpaca", 200) is not bucket_for("yahoo", 200)
    with pytest.raises(ValueError):
        TokenBucket(0)


def _state_after(exc: Exception, attempt: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, initial_wait=1.0, max_wait=30.0)
    error = TransientSourceError("HTTP 500")
    for attempt, low in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        waits = [policy._wait(_state_after(error, attempt)) for _ in range(50)]
        assert all(low <= w <= low + 1.0 for w in waits)
        assert len(set(waits)) > 1  # jitter
    assert policy._wait(_state_after(error, 9)) == 30.0


def test_a_retry_after_hint_lengthens_the_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=5, initial_wait=0.0, max_wait=20.0)
    assert policy._wait(_state_after(TransientSourceError("429", retry_after=7), 1)) == 7.0
    assert policy._wait(_state_after(TransientSourceError("429", retry_after=99), 1)) == 20.0


def test_only_transient_errors_are_retried_and_attempts_are_bounded() -> None:
    policy = RetryPolicy(attempts=4, initial_wait=0.0, max_wait=0.0)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientSourceError("HTTP 503")
        return "ok"

    assert policy.call(flaky, "flaky") == "ok" and len(calls) == 3

    calls.clear()

    def refused() -> None:
        calls.append(1)
        raise DataSourceError("HTTP 403")

    with pytest.raises(DataSourceError, match="403"):
        policy.call(refused, "refused")
    assert len(calls) == 1

    calls.clear()

    def down() -> None:
        calls.append(1)
        raise TransientSourceError("HTTP 500")

    with pytest.raises(DataSourceError, match="down: still failing after 4 attempts"):
        policy.call(down, "down")
    assert len(calls) == 4


def test_policy_comes_from_settings() -> None:
    settings = Settings(source_retry_attempts=7, source_retry_initial_wait_s=0.5)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(7, 0.5, 60.0)
