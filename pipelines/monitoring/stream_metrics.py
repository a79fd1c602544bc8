"""Prometheus metrics of the streaming service, on their own registry (served on /metrics).

Names: ``mltrade_stream_messages_in_total{kind}`` (entries read from the bus),
``mltrade_stream_messages_out_total{kind}`` (acknowledged after their commit),
``mltrade_stream_published_total{kind}`` (put on the bus by the clients),
``mltrade_stream_consumer_lag`` (entries not yet acknowledged by the processor's group),
``mltrade_stream_latency_seconds`` (client receipt -> warehouse commit, per entry),
``mltrade_stream_reconnects_total{stream}``, ``mltrade_stream_protocol_errors_total{code}``,
``mltrade_stream_quarantined_rows_total``, ``mltrade_stream_gap_minutes_backfilled_total``,
``mltrade_intraday_equity_usd``, ``mltrade_intraday_daily_loss`` and
``mltrade_intraday_drawdown`` (fractions of equity, losses positive),
``mltrade_stream_kill_switch_trips_total``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class StreamMetrics:
    """One set of the service's metrics on a private registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        p = "mltrade_stream_"
        self.messages_in = Counter(f"{p}messages_in", "bus entries read", ["kind"], registry=r)
        self.messages_out = Counter(
            f"{p}messages_out", "bus entries acknowledged after commit", ["kind"], registry=r
        )
        self.published = Counter(f"{p}published", "entries put on the bus", ["kind"], registry=r)
        self.lag = Gauge(f"{p}consumer_lag", "entries not yet acknowledged", registry=r)
        self.latency = Histogram(
            f"{p}latency_seconds",
            "client receipt to warehouse commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reconnects = Counter(f"{p}reconnects", "WebSocket reconnects", ["stream"], registry=r)
        self.protocol_errors = Counter(
            f"{p}protocol_errors", "stream protocol errors", ["code"], registry=r
        )
        self.quarantined = Counter(f"{p}quarantined_rows", "rows quarantined", registry=r)
        self.backfilled = Counter(
            f"{p}gap_minutes_backfilled", "bars fetched from REST after a gap", registry=r
        )
        self.kill_switch_trips = Counter(
            f"{p}kill_switch_trips", "kill switch turned on by intraday risk", registry=r
        )
        self.equity = Gauge("mltrade_intraday_equity_usd", "marked equity", registry=r)
        self.daily_loss = Gauge("mltrade_intraday_daily_loss", "loss since last close", registry=r)
        self.drawdown = Gauge("mltrade_intraday_drawdown", "drawdown from peak", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve /metrics on ``addr``:``port`` (0: a free port); return the port."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(server.server_address[1])
