"""The bus on Redis Streams: ``XADD`` (``MAXLEN ~``), ``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``.

Every connection carries the client name ``<prefix>:<role>`` so an operator (or a test) can
find and cut exactly this service's connections (``CLIENT LIST``) on a Redis shared with
Celery. Connection errors propagate as :class:`BusUnavailable`; callers retry with backoff,
and nothing is lost meanwhile: a producer keeps its buffer, a consumer's unacknowledged entries
stay pending in Redis (with AOF, as docker-compose runs it, across a Redis restart too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from pipelines.errors import MltradeError
from pipelines.streaming.bus import Message


class BusUnavailable(MltradeError):
    """Redis cannot be reached or dropped the connection; retry after a pause."""


def _entries(stream: str, raw: Any) -> list[Message]:
    out = []
    for entry_id, fields in raw or []:
        if fields is None:  # deleted (trimmed) while pending
            continue
        out.append(Message(_text(stream), _text(entry_id), dict(fields)))
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamBus:
    """:class:`~pipelines.streaming.bus.Bus` on one Redis (``redis://host:port/db``)."""

    def __init__(self, url: str, maxlen: int = 1_000_000, client_name: str = "mltrade") -> None:
        self.url, self.maxlen = url, maxlen
        self.client_name = client_name
        self._redis = redis.Redis.from_url(
            url, client_name=client_name, socket_timeout=10, socket_connect_timeout=5
        )

    def _do(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BusUnavailable(
                f"the event bus at {_safe(self.url)} is unreachable ({type(exc).__name__}); "
                "retrying: check that Redis runs"
            ) from exc

    def publish(self, stream: str, entries: Sequence[Mapping[str, bytes | str]]) -> list[str]:
        def send() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(stream, dict(fields), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            return pipe.execute()

        return [_text(i) for i in self._do(send)]

    def ensure_group(self, streams: Sequence[str], group: str) -> None:
        for stream in streams:
            try:
                self._do(self._redis.xgroup_create, stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read(
        self, streams: Sequence[str], group: str, consumer: str, count: int, block_ms: int
    ) -> list[Message]:
        try:
            raw = self._do(
                self._redis.xreadgroup,
                group,
                consumer,
                {s: ">" for s in streams},
                count=count,
                block=block_ms,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):  # Redis restarted empty: make the group again
                raise
            self.ensure_group(streams, group)
            return []
        return self._flatten(raw)

    def pending(self, streams: Sequence[str], group: str, consumer: str) -> list[Message]:
        raw = self._do(self._redis.xreadgroup, group, consumer, {s: "0" for s in streams})
        return self._flatten(raw)

    @staticmethod
    def _flatten(raw: Any) -> list[Message]:
        items = raw.items() if isinstance(raw, dict) else raw or []
        out: list[Message] = []
        for stream, entries in items:
            if isinstance(entries, list) and entries and isinstance(entries[0], list):
                entries = entries[0]  # RESP3 shape
            out.extend(_entries(stream, entries))
        return out

    def reclaim(
        self, streams: Sequence[str], group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Message]:
        out: list[Message] = []
        for stream in streams:
            start = "0-0"
            while len(out) < count:
                answer = self._do(
                    self._redis.xautoclaim,
                    stream,
                    group,
                    consumer,
                    min_idle_ms,
                    start_id=start,
                    count=count - len(out),
                )
                start, claimed = _text(answer[0]), answer[1]
                out.extend(_entries(stream, claimed))
                if start == "0-0":
                    break
        return out

    def ack(self, group: str, messages: Sequence[Message]) -> int:
        by_stream: dict[str, list[str]] = {}
        for m in messages:
            by_stream.setdefault(m.stream, []).append(m.id)
        if not by_stream:
            return 0

        def send() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for stream, ids in by_stream.items():
                pipe.xack(stream, group, *ids)
            return pipe.execute()

        return int(sum(self._do(send)))

    def lag(self, streams: Sequence[str], group: str) -> int:
        total = 0
        for stream in streams:
            try:
                groups = self._do(self._redis.xinfo_groups, stream)
            except redis.ResponseError:  # no such stream yet
                continue
            for info in groups:
                if _text(info.get("name")) == group:
                    total += int(info.get("pending") or 0) + int(info.get("lag") or 0)
        return total

    def delete(self, *streams: str) -> None:
        """Drop streams (tests and benchmarks clean up after themselves)."""
        if streams:
            self._do(self._redis.delete, *streams)

    def length(self, stream: str) -> int:
        return int(self._do(self._redis.xlen, stream))

    def close(self) -> None:
        self._redis.close()


def _safe(url: str) -> str:
    """The URL without a password (never in logs or errors)."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
