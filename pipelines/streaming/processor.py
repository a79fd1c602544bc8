"""The event processor: bus entries into the warehouse, acknowledged after the commit.

Per read (at most ``STREAM_BATCH_SIZE`` entries):

- minute bars (``b``, ``u``): one frame, the last version of each (symbol, minute) in bus
  order, through :func:`~pipelines.streaming.validate.validate_minute_bars`; valid rows are
  upserted into ``minute_bars`` and rejected ones inserted into ``quarantine`` in ONE
  transaction; after it commits the entries are acknowledged. A crash before the ack redelivers
  them; the upsert makes the second delivery a no-op, so the rows are exactly once.
- trade updates (``tu``): the updates of a read go, in bus order, through the ledger's own
  set-based :func:`~pipelines.execution.ledger.apply_broker_states` (state machine, fills; a
  few statements per batch, not per update) in transactions of up to 500, acknowledged after
  the commit. An update older than what the ledger holds (a redelivery after a later one), or
  one that cannot be read, is refused alone, logged with its reason and acknowledged; the
  batch's other updates are applied. Reconciliation settles anything the stream missed.
- trades and quotes (``t``, ``q``): counted and acknowledged; the book is marked with minute
  closes.
- news articles (``n``): checked, stored (or quarantined) and scored by
  :class:`~pipelines.streaming.news.NewsSink`, the batch news stage's rules and store, then
  acknowledged; without a sink (news not streamed) they are acknowledged unread.

When a bar of a later minute has been committed, the book is marked to market
(:class:`~pipelines.streaming.risk.IntradayRisk`). Bus outages are retried with backoff; a
warehouse error leaves the batch unacknowledged and it is processed again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alpaca.trading.models import Order

from pipelines import calendar
from pipelines.errors import BrokerError
from pipelines.execution.brokers.alpaca import to_broker_order
from pipelines.execution.brokers.base import BrokerOrder
from pipelines.execution.ledger import apply_broker_states
from pipelines.ingest import _quarantine
from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.streaming import events
from pipelines.streaming.bus import Bus, Message
from pipelines.streaming.events import BAR_KINDS, NEWS, TICK_KINDS, TRADE_UPDATE, Streams
from pipelines.streaming.news import NewsSink
from pipelines.streaming.redis_bus import BusUnavailable
from pipelines.streaming.risk import IntradayRisk
from pipelines.streaming.store import MinuteBarStore
from pipelines.streaming.validate import validate_minute_bars

log = logging.getLogger(__name__)
RUN_ID = "stream"


@dataclass(frozen=True)
class ProcessorConfig:
    consumer: str  # stable per process: a restart re-reads its own pending entries first
    batch_size: int = 2000
    block_ms: int = 50
    claim_idle_ms: int = 30_000  # other consumers' entries pending longer are taken over
    claim_every_s: float = 5.0
    lag_every_s: float = 1.0
    # The ledger applies a batch of trade updates set-based (about 0.1 ms an update, see
    # docs/benchmarks.md); a bound keeps one read's row locks and commit short all the same.
    trade_updates_per_commit: int = 500


class Processor:
    """Consumes the bus for one consumer of the processor group (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        bus: Bus,
        streams: Streams,
        config: ProcessorConfig,
        metrics: StreamMetrics,
        risk: IntradayRisk | None = None,
        news: NewsSink | None = None,
    ) -> None:
        self.engine, self.bus, self.streams = engine, bus, streams
        self.config, self.metrics, self.risk = config, metrics, risk
        self.news = news
        self.store = MinuteBarStore()
        self._history = pd.DataFrame()
        self._marked: pd.Timestamp | None = None
        self.committed_bars = 0
        self._next_report = 0.0

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event) -> None:
        """Warm up, then process until ``stop`` is set."""
        self.warm_up()
        redo, wait, next_claim, next_lag = True, 0.1, 0.0, 0.0
        names = list(self.streams.all)
        while not stop.is_set():
            try:
                if redo:  # first start, or after an error: our own pending entries first
                    self.bus.ensure_group(names, self.streams.group)
                    self.handle(self.bus.pending(names, self.streams.group, self.config.consumer))
                    redo = False
                now = time.monotonic()
                if now >= next_claim:
                    self.handle(self._reclaim(names))
                    next_claim = now + self.config.claim_every_s
                if now >= next_lag:
                    self._progress(names, now)
                    next_lag = now + self.config.lag_every_s
                self.handle(
                    self.bus.read(
                        names,
                        self.streams.group,
                        self.config.consumer,
                        self.config.batch_size,
                        self.config.block_ms,
                    )
                )
                wait = 0.1
            except (BusUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                log.warning("event=stream_retry wait_s=%.1f error=%s", wait, _first_line(exc))
                redo = True
                stop.wait(wait)
                wait = min(wait * 2, 5.0)

    def warm_up(self, today: date | None = None) -> float:
        """Pay the first batch's one-off costs before reading (seconds spent): the exchange
        calendar (its import and holidays, and today's sessions), validation's code paths on
        one synthetic bar of the latest session, and a warehouse connection with the bars'
        staging table. Nothing is written: without this the first bars waited about 2 s
        (docs/benchmarks.md, "Streaming end to end")."""
        start = time.perf_counter()
        today = today or datetime.now(UTC).date()
        session = calendar.previous_session(today + timedelta(days=1))  # today, or the last
        minute = calendar.session_open(session).to_pydatetime()
        bar = {"T": "b", "S": "WARMUP", "t": minute, "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0}
        entry = events.market_entry({**bar, "v": 100})
        fields = {k: v.encode() for k, v in entry.items()}
        validate_minute_bars(events.bars_frame([Message("warm-up", "0-0", fields)]))
        with self.engine.begin() as conn:
            self.store.prepare(conn)
        seconds = time.perf_counter() - start
        log.info("event=stream_warmed_up seconds=%.2f", seconds)
        return seconds

    def _progress(self, names: list[str], now: float) -> None:
        lag = self.bus.lag(names, self.streams.group)
        self.metrics.lag.set(lag)
        if now >= self._next_report:
            log.info(
                "event=stream_progress minute_bars_committed=%d consumer_lag=%d",
                self.committed_bars,
                lag,
            )
            self._next_report = now + 10.0

    def _reclaim(self, names: list[str]) -> list[Message]:
        claimed = self.bus.reclaim(
            names,
            self.streams.group,
            self.config.consumer,
            self.config.claim_idle_ms,
            self.config.batch_size,
        )
        if claimed:
            log.info("event=stream_reclaimed entries=%d", len(claimed))
        return claimed

    # ------------------------------------------------------------------ one batch
    def handle(self, messages: Sequence[Message]) -> int:
        """Apply one batch of entries and acknowledge them; return how many."""
        if not messages:
            return 0
        by_kind: dict[str, list[Message]] = {}
        for m in messages:
            by_kind.setdefault(events.kind(m), []).append(m)
        for k, ms in by_kind.items():
            self.metrics.messages_in.labels(k).inc(len(ms))
        bars = [m for k in BAR_KINDS for m in by_kind.get(k, [])]
        if bars:
            self._bars(sorted(bars, key=_order))
        updates = by_kind.get(TRADE_UPDATE, [])
        for first in range(0, len(updates), self.config.trade_updates_per_commit):
            self._trade_updates(updates[first : first + self.config.trade_updates_per_commit])
        ticks = [m for k in TICK_KINDS for m in by_kind.get(k, [])]
        if ticks:
            self._done(ticks)
        if by_kind.get(NEWS):
            self._news(by_kind[NEWS])
        return len(messages)

    def _news(self, messages: list[Message]) -> None:
        if self.news is not None:
            batch = self.news.handle([events.payload(m) for m in messages])
            if batch.quarantined:
                self.metrics.quarantined.inc(batch.quarantined)
        self._done(messages)

    def _bars(self, messages: list[Message]) -> None:
        frame = events.bars_frame(messages)
        result = validate_minute_bars(frame, self._history)
        with self.engine.begin() as conn:
            self.store.upsert(conn, result.valid)
            if len(result.rejected):
                _quarantine(conn, result.rejected, self.store.source, RUN_ID)
        self._done(messages)
        self.committed_bars += len(result.valid)
        if len(result.rejected):
            self.metrics.quarantined.inc(len(result.rejected))
            log.warning(
                "event=stream_quarantine rows=%d rules=%s",
                len(result.rejected),
                ",".join(sorted(set(result.rejected["expectation"]))),
            )
        if not result.valid.empty:
            self._remember(result.valid)

    def _remember(self, valid: pd.DataFrame) -> None:
        last = valid.sort_values("ts").groupby("symbol", sort=False).tail(1)
        self._history = (
            pd.concat([self._history, last])
            .drop_duplicates("symbol", keep="last")
            .reset_index(drop=True)
        )
        if self.risk is None:
            return
        self.risk.observe(dict(zip(last["symbol"], last["close"], strict=True)))
        minute = pd.Timestamp(valid["ts"].max())
        if self._marked is None or minute > self._marked:
            self.risk.mark(minute.to_pydatetime())
            self._marked = minute

    def _trade_updates(self, messages: list[Message]) -> None:
        """Apply trade updates in bus order with the ledger's set-based batch (a handful of
        statements and one commit however many), then acknowledge them. An update that cannot
        be read or that the ledger refuses is logged with its reason and acknowledged; the
        others are applied."""
        reports: list[tuple[str, BrokerOrder]] = []
        read: list[tuple[Message, object]] = []  # the entry and its event of each report
        refused: list[tuple[Message, object, str, str]] = []
        for message in messages:
            update: dict[str, Any] = {}
            try:
                update = events.payload(message)
                order = to_broker_order(Order(**update["order"]))
            except (ValueError, KeyError, TypeError, BrokerError) as exc:
                reason = f"unreadable trade update: {_first_line(exc)}"
                refused.append((message, update.get("event"), "?", reason))
                continue
            reports.append((order.client_order_id, order))
            read.append((message, update.get("event")))
        with self.engine.begin() as conn:
            result = apply_broker_states(conn, reports, "stream")
        for r in result.refused:
            refused.append((*read[r.index], r.client_order_id, r.reason))
        for message, event, coid, reason in refused:
            log.warning(
                "event=stream_trade_update_refused client_order_id=%s update=%s entry=%s reason=%s",
                coid,
                event,
                message.id,
                reason,
            )
        self._done(messages)

    def _done(self, messages: list[Message]) -> None:
        """Acknowledge committed entries and record their latency and count."""
        self.bus.ack(self.streams.group, messages)
        now = time.time_ns()
        observe = self.metrics.latency.observe
        counts: dict[bytes, int] = {}
        for m in messages:
            observe((now - events.received_ns(m)) / 1e9)
            k = events.field(m, "k")
            counts[k] = counts.get(k, 0) + 1
        for k, n in counts.items():
            self.metrics.messages_out.labels(k.decode()).inc(n)


def _order(message: Message) -> tuple[int, int]:
    """Bus order of an entry id ``ms-seq`` (a batch may mix reclaimed and new entries)."""
    ms, _, seq = message.id.partition("-")
    return int(ms), int(seq or 0)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
