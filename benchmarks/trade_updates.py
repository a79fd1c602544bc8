"""The processor's trade-update path alone: N fills from the bus into the ledger.

    .venv/bin/python benchmarks/trade_updates.py --orders 300
    .venv/bin/python benchmarks/trade_updates.py --orders 300 --profile   # where the time goes

N orders are sent through the Alpaca adapter to the local trading server (in process) and
filled there; their ``trade_updates`` messages (the shape the local stream server sends) are
handed to one :class:`~pipelines.streaming.processor.Processor` read, as the bus would deliver
them (the bus itself is left out: its ``XACK`` is a no-op here). Prints ms per update: the
processor's own cost per fill, the bound of ``orders.py --concurrent``'s fill path on one
core. A throwaway database on the project's PostgreSQL, dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.orders import _planned, _settings  # noqa: E402
from pipelines.config import get_settings  # noqa: E402
from pipelines.execution.brokers.alpaca import AlpacaBroker  # noqa: E402
from pipelines.execution.orders import send_order  # noqa: E402
from pipelines.monitoring.stream_metrics import StreamMetrics  # noqa: E402
from pipelines.streaming import events  # noqa: E402
from pipelines.streaming.bus import Message  # noqa: E402
from pipelines.streaming.events import Streams  # noqa: E402
from pipelines.streaming.processor import Processor, ProcessorConfig  # noqa: E402
from pipelines.warehouse import embedded  # noqa: E402
from pipelines.warehouse.engine import create_engine, warehouse_url  # noqa: E402
from pipelines.warehouse.migrate import upgrade  # noqa: E402
from tests.support.alpaca_trading_server import AlpacaTradingServer  # noqa: E402
from tests.support.warehouse import drop_database  # noqa: E402


class _AckOnly:
    """The bus's ack, nothing else (the processor is handed its entries directly)."""

    def ack(self, group: str, messages: Sequence[Message]) -> int:
        return len(messages)


def fills_as_entries(engine: sa.Engine, n: int) -> list[Message]:
    """Send ``n`` orders, fill them at the venue, return their fills as bus entries."""
    with AlpacaTradingServer(1e12, None, 100.0, 10**9) as venue:
        settings = _settings(venue.url, 4)
        broker = AlpacaBroker(settings)
        for intent in _planned(engine, n, "burst"):
            send_order(engine, settings, broker, intent)
        venue.fill()
        out = []
        for i, order in enumerate(venue.orders()):
            public = {k: v for k, v in order.items() if not k.startswith("_")}
            entry = events.trade_update_entry(
                {"event": "fill", "order": public, "timestamp": order["updated_at"]}
            )
            fields = {k.encode(): v.encode() for k, v in entry.items()}
            out.append(Message("bench:trade_updates", f"{i + 1}-0", fields))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    admin = warehouse_url(get_settings()).replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"mltrade_bench_{uuid.uuid4().hex[:8]}"
    embedded.ensure_database(admin, name)
    engine = create_engine(embedded.sqlalchemy_url(admin, name), get_settings())
    try:
        upgrade(engine)
        messages = fills_as_entries(engine, args.orders)
        bus: object = _AckOnly()
        processor = Processor(
            engine,
            bus,
            Streams("bench"),
            ProcessorConfig("bench"),
            StreamMetrics(),  # type: ignore[arg-type]
        )
        profile = cProfile.Profile()
        start = time.perf_counter()
        if args.profile:
            profile.enable()
        processor.handle(messages)
        profile.disable()
        seconds = time.perf_counter() - start
        with engine.connect() as conn:
            filled = conn.execute(
                sa.text("SELECT count(*) FROM orders WHERE status = 'filled'")
            ).scalar_one()
        print(
            f"{args.orders} trade updates in {seconds:.2f} s = "
            f"{seconds / args.orders * 1000:.2f} ms each ({args.orders / seconds:,.0f}/s); "
            f"filled in the ledger {filled}/{args.orders}; load average {os.getloadavg()[0]:.1f}"
        )
        if args.profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    finally:
        engine.dispose()
        drop_database(embedded.admin_uri(admin), name)


if __name__ == "__main__":
    main()
