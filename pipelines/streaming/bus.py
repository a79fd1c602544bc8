"""The event bus contract: producers append, consumer groups read, ack after the commit.

Delivery is at least once: an entry stays pending in its group until a consumer acknowledges
it, which the processor does only after the warehouse transaction holding its effect has
committed. A consumer that dies leaves its entries pending; :meth:`Bus.reclaim` hands those
idle longer than a threshold to a live consumer. Consumers therefore see an entry again after
a crash, and every effect they write is idempotent (upserts on natural keys), which turns
at-least-once delivery into exactly-once rows.

Redis Streams implement it (:mod:`pipelines.streaming.redis_bus`). A Kafka deployment maps one
to one (docs/streaming.md): a stream is a topic (partitioned by symbol), a group a consumer
group, ``ack`` a commit of the offsets after the warehouse commit, ``reclaim`` the group's
rebalance after a session timeout, ``maxlen`` the topic's retention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One bus entry: its stream, its id (ordered within the stream) and its fields."""

    stream: str
    id: str
    fields: Mapping[str, bytes]


class Bus(Protocol):
    """Append-only streams with consumer groups (see the module docstring)."""

    def publish(self, stream: str, entries: Sequence[Mapping[str, bytes | str]]) -> list[str]:
        """Append ``entries`` to ``stream`` (in order); return their ids."""
        ...

    def ensure_group(self, streams: Sequence[str], group: str) -> None:
        """Create ``group`` on each stream (reading from the start) unless it exists."""
        ...

    def read(
        self, streams: Sequence[str], group: str, consumer: str, count: int, block_ms: int
    ) -> list[Message]:
        """New entries for ``consumer`` of ``group``, at most ``count``, waiting up to
        ``block_ms``; they stay pending until acknowledged."""
        ...

    def pending(self, streams: Sequence[str], group: str, consumer: str) -> list[Message]:
        """Entries already delivered to ``consumer`` and not acknowledged (after a restart)."""
        ...

    def reclaim(
        self, streams: Sequence[str], group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Message]:
        """Take over entries of other consumers pending longer than ``min_idle_ms``."""
        ...

    def ack(self, group: str, messages: Sequence[Message]) -> int:
        """Acknowledge ``messages`` (their effects are committed); return how many."""
        ...

    def lag(self, streams: Sequence[str], group: str) -> int:
        """Entries of ``streams`` not yet acknowledged by ``group`` (pending + unread)."""
        ...
