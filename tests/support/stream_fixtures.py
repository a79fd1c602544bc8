"""Fixtures shared by tests/streaming and tests/performance (imported by their conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import RedisServer, shared_or_none


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private restartable Redis (None when only the machine's shared one is available)."""
    server = RedisServer()
    if server.binary is None:
        yield None
        return
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    if redis_server is not None:
        return redis_server.url
    url = shared_or_none()
    if url is None:
        pytest.skip(
            "no redis-server binary and no Redis at 127.0.0.1:6379: `make test-services` "
            "installs/starts it (apt-get install redis-server)"
        )
    return url


@pytest.fixture
def bus_prefix(redis_url: str) -> Iterator[str]:
    """A stream prefix of this test alone; its streams are deleted afterwards."""
    prefix = f"mltrade-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
