"""Client side of the bus: a buffer flushed to the bus in pipelined batches.

WebSocket handlers must not wait on Redis one entry at a time (10,000 updates a second), so
they :meth:`Publisher.put` into a buffer that a thread flushes every ``flush_ms`` (or sooner
when ``max_batch`` entries wait). When the bus is unreachable the entries stay in the buffer,
in order, and the flush is retried with backoff: nothing received is dropped while the
process lives.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.streaming.bus import Bus
from pipelines.streaming.redis_bus import BusUnavailable

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self, bus: Bus, metrics: StreamMetrics, flush_ms: int = 2, max_batch: int = 1000
    ) -> None:
        self.bus, self.metrics = bus, metrics
        self.flush_s, self.max_batch = flush_ms / 1000, max_batch
        self._buffer: deque[tuple[str, dict[str, str]]] = deque()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-publisher", daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def put(self, stream: str, entry: dict[str, str]) -> None:
        self._buffer.append((stream, entry))
        if len(self._buffer) >= self.max_batch:
            with self._wake:
                self._wake.notify()

    def waiting(self) -> int:
        return len(self._buffer)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (while the bus answers, up to ``timeout``) and stop."""
        self._stop.set()
        with self._wake:
            self._wake.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        wait = 0.05
        while True:
            with self._wake:
                if not self._buffer and not self._stop.is_set():
                    self._wake.wait(self.flush_s)
            try:
                sent = self.flush()
                wait = 0.05
            except BusUnavailable as exc:
                log.warning("event=bus_publish_retry waiting=%d error=%s", self.waiting(), exc)
                if self._stop.wait(wait) and not self._buffer:
                    return
                wait = min(wait * 2, 5.0)
                continue
            if self._stop.is_set() and not self._buffer:
                return
            if not sent:
                self._stop.wait(self.flush_s)

    def flush(self) -> int:
        """Send up to ``max_batch`` buffered entries, per stream in order; return how many."""
        batch = [self._buffer[i] for i in range(min(len(self._buffer), self.max_batch))]
        if not batch:
            return 0
        by_stream: dict[str, list[dict[str, str]]] = {}
        for stream, entry in batch:
            by_stream.setdefault(stream, []).append(entry)
        for stream, entries in by_stream.items():
            self.bus.publish(stream, entries)  # raises BusUnavailable: the batch stays
        kinds: dict[str, int] = {}
        for _ in batch:
            _stream, entry = self._buffer.popleft()
            kinds[entry["k"]] = kinds.get(entry["k"], 0) + 1
        for k, n in kinds.items():
            self.metrics.published.labels(k).inc(n)
        return len(batch)
