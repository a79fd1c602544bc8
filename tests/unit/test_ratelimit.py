"""The token bucket in front of every broker request, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from pipelines.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_burst_then_steady_rate_never_exceeds_the_limit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(180, burst=10, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(100):
        bucket.acquire()
        stamps.append(clock.now)
    assert stamps[:10] == [0.0] * 10  # the burst goes at once
    # Then one token every 1/3 s: 90 more take 30 s.
    assert stamps[-1] == pytest.approx(30.0)
    # No 60-second window holds more than 180 + burst requests; any 10 s window at most 30 + 10.
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s < t + 10) <= 40
    assert bucket.waited == pytest.approx(30.0)


def test_tokens_refill_while_idle_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0.0
    clock.now += 100  # idle: refills to the burst, not beyond
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(1.0)]


def test_threads_share_one_bucket() -> None:
    bucket = TokenBucket(6000, burst=5)  # 100 per second
    done = []

    def take() -> None:
        for _ in range(5):
            bucket.acquire()
        done.append(1)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 20 tokens, 5 in the burst: 15 waited for, at 100/s -> at least 0.15 s waited in total
    assert len(done) == 4 and bucket.waited >= 0.15 - 1e-6


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(60, burst=0)
