"""Streaming end to end: local stream server -> alpaca-py client -> Redis Streams -> processor
-> committed ``minute_bars`` rows, at a fixed offered rate.

    .venv/bin/python benchmarks/stream.py --rate 10000 --seconds 60      # the seed's figure
    .venv/bin/python benchmarks/stream.py --rates 2000,5000,10000,20000 --seconds 15  # ceiling
    .venv/bin/python benchmarks/stream.py --bus-only --seconds 10         # the bus alone
    .venv/bin/python benchmarks/stream.py --stage clients --seconds 10    # server -> bus only
    .venv/bin/python benchmarks/stream.py --stage processor --seconds 10  # bus -> rows only
    .venv/bin/python benchmarks/stream.py --first-batches   # a fresh processor, cold vs warm

Three processes, as deployed: this one (the stream server, pacing bars in 10 ms ticks and
recording when each left), ``mltrade stream --role clients`` (StockDataStream -> XADD) and
``mltrade stream --role processor`` (XREADGROUP -> validation -> COPY + merge -> commit ->
XACK). Bars are minutes recorded from the real sample data (500 symbols, consecutive
sessions), each a new (symbol, minute) row. Latency per row = ``ingested_at`` (the merge's
``clock_timestamp()``, inside the committing transaction) minus the server's send time; both
clocks are this machine's. Lost = sent keys missing from the warehouse; duplicated = rows
beyond one per key (the primary key forbids them; counted anyway). ``--bus-only``: pipelined
XADD of the same entries from one Python producer, the raw limit of the bus path.
``--stage``: one stage alone at full speed, to find which one caps the chain: ``clients``
(the server sends every bar at once; entries/s until all are on the bus) or ``processor``
(the entries are put on the bus first; rows/s until all are committed, one
``mltrade stream --role processor``). ``--first-batches``: a fresh processor's first reads
of 1,000 bars each, without and with its warm-up (each in a new interpreter). The rate runs
start sending once the processor has joined its group (after its warm-up), as a deployed
processor is up before the market opens.

A private ``redis-server`` (AOF, ``appendfsync everysec`` as in docker-compose) and a throwaway
database on the project's PostgreSQL, both removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import calendar  # noqa: E402
from pipelines.config import get_settings  # noqa: E402
from pipelines.sources.sample import SampleSource  # noqa: E402
from pipelines.streaming import events  # noqa: E402
from pipelines.streaming.redis_bus import RedisStreamBus  # noqa: E402
from pipelines.warehouse import embedded  # noqa: E402
from pipelines.warehouse.engine import create_engine, warehouse_url  # noqa: E402
from pipelines.warehouse.migrate import upgrade  # noqa: E402
from tests.support.alpaca_stream_server import AlpacaStreamServer, recorded_day  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.warehouse import drop_database  # noqa: E402

FIRST = date(2010, 3, 1)


def bars(n: int, n_symbols: int) -> list[dict]:
    """``n`` bar messages from the real sample data: ``n_symbols`` symbols, minute by minute
    over consecutive sessions from 2010-03-01."""
    source = SampleSource()
    symbols = sorted(source.universe())[:n_symbols]
    days_needed = -(-n // (390 * len(symbols)))
    sessions = calendar.sessions(FIRST, date(2010, 8, 20))[:days_needed]
    daily = source.fetch_daily_bars(sessions[0], sessions[-1], symbols)
    return recorded_day(daily)[:n]


def _service(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(f"/tmp/mltrade-bench-stream-{role}.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "stream", "--role", role, "--metrics-port", "0"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM minute_bars")).scalar_one())


def _reading(redis_url: str, prefix: str) -> bool:
    """Whether the processor has joined its group (it does so after warming up): a deployed
    processor is up long before the market opens, so the run starts when it reads."""
    streams = events.Streams(prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        return bool(client.xinfo_consumers(streams.bars, streams.group))
    except redis.ResponseError:  # no stream or group yet
        return False
    finally:
        client.close()


def run_rate(rate: int, seconds: float, n_symbols: int, redis_url: str, db_url: str) -> dict:
    engine = create_engine(db_url, get_settings())
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE minute_bars, quarantine"))
    messages = bars(int(rate * seconds), n_symbols)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    symbols = sorted({m["S"] for m in messages})
    with AlpacaStreamServer(slow_client_frames=1_000_000) as server:
        env = {
            "WAREHOUSE_URL": db_url,
            "BUS_URL": redis_url,
            "BUS_PREFIX": prefix,
            "STREAM_DATA_URL": server.data_url,
            "STREAM_TRADING_URL": "",
            "ALPACA_API_KEY": server.api_key,
            "ALPACA_SECRET_KEY": server.secret_key,
            "UNIVERSE": ",".join(symbols),
            "STREAM_BATCH_SIZE": "5000",
            "STREAM_BLOCK_MS": "5",
            "LOG_LEVEL": "WARNING",
        }
        processes = [_service("processor", env), _service("clients", env)]
        try:
            while not server.subscribers() or not _reading(redis_url, prefix):
                time.sleep(0.1)
            time.sleep(1.0)
            start, tick, i = time.perf_counter(), 0.01, 0
            per_tick = max(1, int(rate * tick))
            while i < len(messages):
                server.publish_nowait(messages[i : i + per_tick], frame_size=200)
                i += per_tick
                ahead = start + (i / rate) - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            offered = len(messages) / (time.perf_counter() - start)
            deadline = time.monotonic() + max(60.0, seconds)
            while _count(engine) < len(messages) and time.monotonic() < deadline:
                time.sleep(0.5)
            drained = time.perf_counter() - start
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        sent = dict(server.sent)
    with engine.connect() as conn:
        rows = pd.read_sql(sa.text("SELECT symbol, ts, ingested_at FROM minute_bars"), conn)
        distinct = conn.execute(
            sa.text("SELECT count(DISTINCT (symbol, ts)) FROM minute_bars")
        ).scalar_one()
        quarantined = conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one()
    engine.dispose()
    rows["start"] = pd.to_datetime(rows["ts"], utc=True) - pd.Timedelta(minutes=1)
    sent_ns = np.array(
        [
            sent.get((s, t.to_pydatetime()), 0)
            for s, t in zip(rows["symbol"], rows["start"], strict=True)
        ]
    )
    stored = pd.to_datetime(rows["ingested_at"], utc=True).dt.as_unit("ns")
    stored_ns = stored.astype("int64").to_numpy()  # pandas 3 reads microseconds: make them ns
    latency_ms = (stored_ns - sent_ns)[sent_ns > 0] / 1e6
    # The first seconds include the processor's first batches (lazy imports, calendars):
    # the steady state is reported apart so a start-up spike cannot pass for the path's p99.
    sent_some = sent_ns[sent_ns > 0]
    steady = latency_ms[sent_some >= sent_some.min() + 2_000_000_000] if len(sent_some) else []
    RedisStreamBus(redis_url).delete(*events.Streams(prefix).all)
    return {
        "rate": rate,
        "offered": offered,
        "sent": len(messages),
        "rows": len(rows),
        "lost": len(messages) - int(distinct) - int(quarantined),
        "quarantined": int(quarantined),
        "duplicated": len(rows) - int(distinct),
        "end_to_end_rate": len(rows) / drained,
        "p50_ms": float(np.percentile(latency_ms, 50)) if len(latency_ms) else float("nan"),
        "p99_ms": float(np.percentile(latency_ms, 99)) if len(latency_ms) else float("nan"),
        "p99_steady_ms": float(np.percentile(steady, 99)) if len(steady) else float("nan"),
    }


def _wait_for(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stage(which: str, n: int, n_symbols: int, redis_url: str, db_url: str) -> tuple[int, float]:
    """(entries, seconds) of one stage alone at full speed (see the module docstring)."""
    messages = bars(n, n_symbols)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    streams = events.Streams(prefix)
    bus = RedisStreamBus(redis_url, maxlen=10_000_000)
    env = {
        "WAREHOUSE_URL": db_url,
        "BUS_URL": redis_url,
        "BUS_PREFIX": prefix,
        "STREAM_TRADING_URL": "",
        "UNIVERSE": ",".join(sorted({m["S"] for m in messages})),
        "STREAM_BATCH_SIZE": "5000",
        "STREAM_BLOCK_MS": "5",
        "LOG_LEVEL": "WARNING",
    }
    engine = create_engine(db_url, get_settings())
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE minute_bars, quarantine"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        if which == "processor":
            entries = [events.market_entry(m) for m in messages]
            for i in range(0, len(entries), 1000):
                bus.publish(streams.bars, entries[i : i + 1000])
            proc = _service("processor", env)
            _wait_for(lambda: _count(engine) > 0, 600)  # started (imports) and processing
            start = time.perf_counter() - 0.05
            before = _count(engine)
            _wait_for(lambda: _count(engine) >= n, 600)
            return n - before, time.perf_counter() - start
        with AlpacaStreamServer(slow_client_frames=1_000_000) as server:
            env |= {"STREAM_DATA_URL": server.data_url, "ALPACA_API_KEY": server.api_key}
            env |= {"ALPACA_SECRET_KEY": server.secret_key}
            proc = _service("clients", env)
            _wait_for(lambda: server.subscribers() > 0, 600)
            time.sleep(1.0)
            start = time.perf_counter()
            server.publish(messages, frame_size=200)
            _wait_for(lambda: bus.length(streams.bars) >= n, 600)
            return n, time.perf_counter() - start
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        bus.delete(*streams.all)
        engine.dispose()


def first_batches(redis_url: str, db_url: str, batches: int = 4, size: int = 1000) -> None:
    """The processor's first ``batches`` reads of ``size`` bars, in a fresh interpreter each,
    without and with :meth:`Processor.warm_up` (side by side)."""
    messages = bars(batches * size * 2, 500)
    print("| processor | warm-up | " + " | ".join(f"batch {i + 1}" for i in range(batches)) + " |")
    print("|---|---|" + "---|" * batches)
    for n, mode in enumerate(("cold", "warm")):
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        bus = RedisStreamBus(redis_url, maxlen=10_000_000)
        part = messages[n * batches * size : (n + 1) * batches * size]
        bus.publish(events.Streams(prefix).bars, [events.market_entry(m) for m in part])
        child = subprocess.run(
            [sys.executable, __file__, "--first-batch-child", mode, "--redis", redis_url]
            + ["--db", db_url, "--prefix", prefix, "--batch", str(size)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        print(child.stdout.strip(), flush=True)
        bus.delete(*events.Streams(prefix).all)


def _first_batch_child(mode: str, redis_url: str, db_url: str, prefix: str, size: int) -> None:
    """One fresh processor: its warm-up (if ``mode`` is warm) and each read until drained."""
    from pipelines.monitoring.stream_metrics import StreamMetrics
    from pipelines.streaming.processor import Processor, ProcessorConfig
    from pipelines.streaming.risk import IntradayRisk, RiskLimits

    settings = get_settings()
    engine = create_engine(db_url, settings)
    streams, bus = events.Streams(prefix), RedisStreamBus(redis_url)
    metrics = StreamMetrics()
    limits = RiskLimits(settings.initial_capital, settings.daily_loss_limit, settings.max_drawdown)
    risk = IntradayRisk(engine, limits, metrics)
    processor = Processor(engine, bus, streams, ProcessorConfig("first"), metrics, risk)
    warm = processor.warm_up() * 1000 if mode == "warm" else 0.0
    bus.ensure_group(list(streams.all), streams.group)
    times = []
    while batch := bus.read(list(streams.all), streams.group, "first", size, 5):
        start = time.perf_counter()
        processor.handle(batch)
        times.append((time.perf_counter() - start) * 1000)
    cells = " | ".join(f"{t:,.0f} ms" for t in times)
    print(f"| {mode} | {warm:,.0f} ms | {cells} |")
    engine.dispose()


def bus_only(redis_url: str, n: int, n_symbols: int) -> float:
    entries = [events.market_entry(m) for m in bars(n, n_symbols)]
    bus = RedisStreamBus(redis_url, maxlen=10_000_000)
    stream = f"bench-{uuid.uuid4().hex[:8]}:bars"
    start = time.perf_counter()
    for i in range(0, len(entries), 1000):
        bus.publish(stream, entries[i : i + 1000])
    elapsed = time.perf_counter() - start
    bus.delete(stream)
    return len(entries) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="offered updates per second")
    parser.add_argument("--rates", default="", help="comma-separated rates (ceiling search)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bus-only", action="store_true")
    parser.add_argument("--stage", choices=["clients", "processor"], default="")
    parser.add_argument("--first-batches", action="store_true", help="cold vs warm processor")
    parser.add_argument("--first-batch-child", choices=["cold", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_batch_child:
        _first_batch_child(args.first_batch_child, args.redis, args.db, args.prefix, args.batch)
        return
    private_redis = RedisServer(fsync="everysec").start()
    try:
        if args.bus_only:
            n = int(50_000 * args.seconds)
            rate = bus_only(private_redis.url, n, args.symbols)
            print(f"bus only: {n} entries XADDed at {rate:,.0f}/s (goal 50,000/s)")
            return
        base = warehouse_url(get_settings())
        admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
        name = f"mltrade_bench_{uuid.uuid4().hex[:8]}"
        embedded.ensure_database(admin, name)
        db_url = embedded.sqlalchemy_url(admin, name)
        engine = create_engine(db_url, get_settings())
        upgrade(engine)
        engine.dispose()
        try:
            if args.first_batches:
                first_batches(private_redis.url, db_url)
                return
            if args.stage:
                n = int(args.rate * args.seconds)
                n, seconds = stage(args.stage, n, args.symbols, private_redis.url, db_url)
                print(
                    f"{args.stage} alone: {n:,} entries in {seconds:.1f} s = {n / seconds:,.0f}/s"
                )
                return
            rates = [int(r) for r in args.rates.split(",") if r] or [args.rate]
            print(
                "| offered/s | achieved/s | sent | rows | quarantined | not stored | duplicated "
                "| p50 | p99 | p99 after the first 2 s |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            for rate in rates:
                r = run_rate(rate, args.seconds, args.symbols, private_redis.url, db_url)
                print(
                    f"| {r['offered']:,.0f} | {r['end_to_end_rate']:,.0f} | {r['sent']:,} | "
                    f"{r['rows']:,} | {r['quarantined']} | {r['lost']} | {r['duplicated']} | "
                    f"{r['p50_ms']:.1f} ms | "
                    f"{r['p99_ms']:.1f} ms | {r['p99_steady_ms']:.1f} ms |",
                    flush=True,
                )
        finally:
            drop_database(embedded.admin_uri(admin), name)
    finally:
        private_redis.cleanup()


if __name__ == "__main__":
    main()
