"""Order submission speed: the Alpaca adapter and the ledger against the local Alpaca server.

    .venv/bin/python benchmarks/orders.py                  # both parts
    .venv/bin/python benchmarks/orders.py --orders 1000 --concurrency 4 --symbols 500
    .venv/bin/python benchmarks/orders.py --concurrent 1000    # burst, then fills via the stream

1. ``--orders`` orders through ``send_order`` (ledger ``submitted`` committed, POST through
   alpaca-py, the answer committed) from ``--concurrency`` threads: per-order p50/p99 latency
   including both ledger commits, next to a bare alpaca-py ``submit_order`` to the same server
   (the raw limit of the HTTP path), and the duplicates found (must be 0).
2. A pre-market rebalance of ``--symbols`` sample symbols from the warehouse to acknowledged
   orders: risk model + optimizer (``build_plan``), risk gate, submission, reconciliation.
   Expected returns are written straight into ``predictions`` (model inference is timed by
   the models' benchmarks, not here).

3. ``--concurrent N`` (instead of 1 and 2): N orders released at once from N threads through
   ``send_order`` (a pool of 20 warehouse connections), each acknowledged: p50/p99 from
   release to the answer committed in the ledger, duplicates at the broker. Then the venue
   fills all N at once; each fill comes back as a ``trade_updates`` message from the local
   stream server through alpaca-py's ``TradingStream`` (``mltrade stream`` in its own
   process), the Redis bus and the processor into the ledger: per order, the time from the
   venue's ``filled_at`` to when the ledger's ``filled`` state is first seen committed (the
   benchmark polls the ledger every 10 ms). The peer of the burst: the same number of bare
   alpaca-py ``submit_order`` calls released at once against the same server.

The token bucket is set to the local server's own limit, so this measures our code, not
Alpaca's quota: at Alpaca's ~200 requests/min, N orders need at least N/200 minutes whatever
the code does (printed below as the raw limit). Runs in a throwaway database on the project's
PostgreSQL (embedded under MLTRADE_HOME, or WAREHOUSE_URL's server), dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import get_settings  # noqa: E402
from pipelines.execution.brokers.alpaca import AlpacaBroker  # noqa: E402
from pipelines.execution.brokers.base import OrderIntent  # noqa: E402
from pipelines.execution.orders import client_order_id, send_order  # noqa: E402
from pipelines.warehouse import embedded  # noqa: E402
from pipelines.warehouse.engine import create_engine, warehouse_url  # noqa: E402
from pipelines.warehouse.migrate import upgrade  # noqa: E402

DAY = date(2010, 8, 16)
ALPACA_PER_MINUTE = 200
KEY, SECRET = "test-key", "test-secret"


@contextmanager
def local_alpaca(prices: dict[str, float] | None = None, cash: float = 1e12) -> Iterator[str]:
    """The local Alpaca server in its own process (so it shares no GIL with the client)."""
    args = [
        sys.executable,
        "-m",
        "tests.support.alpaca_trading_server",
        "--cash",
        str(cash),
        "--rate-limit",
        "1000000",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        if prices:
            json.dump(prices, f)
            f.flush()
            args += ["--prices", f.name, "--default-price", "0"]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            yield proc.stdout.readline().strip()
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


@contextmanager
def venue_with_stream(poll_ms: float) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """The local Alpaca server and its stream server in one process of their own: yields
    (REST URL, trading stream URL, the process, for :func:`_ask`)."""
    args = [sys.executable, "-m", "tests.support.alpaca_trading_server", "--cash", "1e12"]
    args += ["--rate-limit", "1000000", "--stream", "--poll-ms", str(poll_ms)]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield proc.stdout.readline().strip(), proc.stdout.readline().strip(), proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def _ask(proc: subprocess.Popen[str], command: str) -> Any:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _planned(engine: sa.Engine, n: int, strategy: str = "bench") -> list[OrderIntent]:
    """``n`` buy intents written to the ledger as ``planned`` (one plan)."""
    intents = [
        OrderIntent(
            client_order_id(strategy, DAY, 1, f"S{i:04d}", "buy"),
            f"S{i:04d}",
            "buy",
            Decimal(10),
            DAY,
        )
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO plans (strategy, session_date, plan_version, model_name, "
                "model_version, status, run_id) VALUES (:st, :d, 1, 'm', '1', 'submitted', "
                "'bench')"
            ),
            {"st": strategy, "d": DAY},
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders (client_order_id, strategy, session_date, plan_version, "
                "symbol, side, qty, status, broker, model_name, model_version) VALUES "
                "(:c, :st, :d, 1, :s, 'buy', 10, 'planned', 'alpaca', 'm', '1')"
            ),
            [{"c": i.client_order_id, "st": strategy, "d": DAY, "s": i.symbol} for i in intents],
        )
    return intents


def _throwaway_database() -> tuple[str, str]:
    """(sqlalchemy URL of a new database, libpq admin URI to drop it)."""
    base = warehouse_url(get_settings())
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"mltrade_bench_{uuid.uuid4().hex[:8]}"
    embedded.ensure_database(admin, name)
    return embedded.sqlalchemy_url(admin, name), name


def _settings(url: str, concurrency: int):
    return get_settings().model_copy(
        update={
            "broker": "alpaca",
            "alpaca_api_key": SecretStr(KEY),
            "alpaca_secret_key": SecretStr(SECRET),
            "alpaca_base_url": url,
            "broker_rate_limit_per_minute": 1_000_000.0,
            "broker_rate_burst": 1_000,
            "broker_concurrency": concurrency,
            "max_weight": 0.05,
        }
    )


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def orders_part(engine: sa.Engine, n: int, concurrency: int) -> None:
    with local_alpaca() as url:
        settings = _settings(url, concurrency)
        broker = AlpacaBroker(settings)
        intents = _planned(engine, n)

        def timed(intent: OrderIntent) -> float:
            start = time.perf_counter()
            send_order(engine, settings, broker, intent)
            return time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            ours = list(pool.map(timed, intents))
        wall = time.perf_counter() - start

        # The peer: alpaca-py alone, same server, same concurrency, no ledger.
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        client = TradingClient(KEY, SECRET, url_override=url)

        def bare(i: int) -> float:
            request = MarketOrderRequest(
                symbol=f"S{i:04d}",
                qty=10,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.OPG,
                client_order_id=f"bare-{i}",
            )
            t = time.perf_counter()
            client.submit_order(request)
            return time.perf_counter() - t

        with ThreadPoolExecutor(concurrency) as pool:
            peer = list(pool.map(bare, range(n)))

        with engine.connect() as conn:
            ledger = dict(
                conn.execute(
                    sa.text(
                        "SELECT client_order_id, broker_order_id FROM orders "
                        "WHERE strategy = 'bench' AND status = 'accepted'"
                    )
                ).all()
            )
        accepted = len(ledger)
        at_broker = [o for o in broker.list_orders() if o.client_order_id.startswith("mlt-")]
        ours_at_broker = [
            o for o in at_broker if ledger.get(o.client_order_id) == o.broker_order_id
        ]
        duplicates = len(at_broker) - len({o.client_order_id for o in at_broker})
        print(f"\n## {n} orders, {concurrency} threads, local Alpaca server")
        print("| | p50 | p99 | max | orders/s |")
        print("|---|---|---|---|---|")
        print(
            f"| send_order (ledger + alpaca-py) | {_pct(ours, 50):.1f} ms | "
            f"{_pct(ours, 99):.1f} ms | {max(ours) * 1000:.1f} ms | {n / wall:.0f} |"
        )
        print(
            f"| alpaca-py submit_order alone | {_pct(peer, 50):.1f} ms | "
            f"{_pct(peer, 99):.1f} ms | {max(peer) * 1000:.1f} ms | |"
        )
        print(
            f"ratio p50 {_pct(ours, 50) / _pct(peer, 50):.1f}x, "
            f"p99 {_pct(ours, 99) / _pct(peer, 99):.1f}x; accepted in the ledger {accepted}/{n}, "
            f"at the broker {len(ours_at_broker)}, duplicates {duplicates}"
        )
        print(
            f"raw limit at Alpaca ({ALPACA_PER_MINUTE}/min, 1 request per new order): "
            f"{n / ALPACA_PER_MINUTE:.1f} min for {n} orders"
        )


def _stream_service(env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open("/tmp/mltrade-bench-orders-stream.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "stream", "--role", "all", "--metrics-port", "0"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _wait(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def _count_status(engine: sa.Engine, status: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM orders WHERE strategy = 'burst' AND status = :s"),
                {"s": status},
            ).scalar_one()
        )


def _bare_burst(url: str, n: int) -> list[float]:
    """The peer: ``n`` bare alpaca-py ``submit_order`` released at once from ``n`` threads."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    client = TradingClient(KEY, SECRET, url_override=url)
    release = threading.Event()

    def bare(i: int) -> float:
        request = MarketOrderRequest(
            symbol=f"P{i:04d}",
            qty=10,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.OPG,
            client_order_id=f"peer-{i}",
        )
        release.wait()
        t = time.perf_counter()
        client.submit_order(request)
        return time.perf_counter() - t

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(bare, i) for i in range(n)]
        time.sleep(1.0)
        release.set()
        return [f.result() for f in futures]


def _watch_filled(engine: sa.Engine, n: int, timeout: float) -> dict[str, float]:
    """client_order_id -> when (epoch s) its 'filled' state was first seen committed, polling
    the ledger every 10 ms (the commit's time to within a poll)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while len(seen) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fills in the ledger: {len(seen)}/{n} in {timeout:.0f} s")
            rows = conn.execute(
                sa.text(
                    "SELECT client_order_id FROM orders WHERE strategy = 'burst' "
                    "AND status = 'filled'"
                )
            ).scalars()
            now = time.time()
            for coid in rows:
                seen.setdefault(coid, now)
            conn.rollback()  # a fresh snapshot for the next poll
            time.sleep(0.01)
    return seen


def _fills_received(redis_url: str, prefix: str) -> dict[str, float]:
    """client_order_id -> when (epoch s) the TradingStream client received its fill (the
    ``rx`` stamp of its bus entry)."""
    import redis

    from pipelines.streaming import events

    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange(events.Streams(prefix).trade_updates)
    finally:
        client.close()
    out = {}
    for _, fields in entries:
        update = json.loads(fields[b"d"])
        if update.get("event") == "fill":
            out[update["order"]["client_order_id"]] = int(fields[b"rx"]) / 1e9
    return out


def concurrent_part(db_url: str, n: int, poll_ms: float) -> None:
    """``--concurrent n``: see the module docstring (3)."""
    from tests.support.redis_server import RedisServer

    settings0 = get_settings().model_copy(update={"warehouse_pool_size": 20})
    engine = create_engine(db_url, settings0)
    intents = _planned(engine, n, "burst")
    redis = RedisServer(fsync="everysec").start()
    try:
        with venue_with_stream(poll_ms) as (url, trading_url, venue):
            settings = _settings(url, n).model_copy(update={"warehouse_pool_size": 20})
            broker = AlpacaBroker(settings)
            env = {
                "WAREHOUSE_URL": db_url,
                "BUS_URL": redis.url,
                "BUS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "STREAM_DATA_URL": trading_url.replace("/stream", "/v2/iex"),
                "STREAM_TRADING_URL": trading_url,
                "ALPACA_API_KEY": KEY,
                "ALPACA_SECRET_KEY": SECRET,
                "UNIVERSE": "S0000",
                "LOG_LEVEL": "WARNING",
            }
            service = _stream_service(env)
            try:
                _wait("TradingStream to listen", lambda: _ask(venue, "listeners") > 0, 300)
                release = threading.Event()

                def timed(intent: OrderIntent) -> float:
                    release.wait()
                    start = time.perf_counter()
                    send_order(engine, settings, broker, intent)
                    return time.perf_counter() - start

                with ThreadPoolExecutor(n) as pool:
                    futures = [pool.submit(timed, i) for i in intents]
                    time.sleep(1.0)  # every thread parked on the event
                    start = time.perf_counter()
                    release.set()
                    latencies = [f.result() for f in futures]
                wall = time.perf_counter() - start
                with engine.connect() as conn:
                    ledger = dict(
                        conn.execute(
                            sa.text(
                                "SELECT client_order_id, broker_order_id FROM orders "
                                "WHERE strategy = 'burst' AND broker_order_id IS NOT NULL"
                            )
                        ).all()
                    )
                at_broker = [o for o in broker.list_orders() if o.client_order_id in ledger]
                duplicates = len(at_broker) - len({o.client_order_id for o in at_broker})
                matched = sum(ledger[o.client_order_id] == o.broker_order_id for o in at_broker)
                _wait("the 'new' updates", lambda: _count_status(engine, "accepted") == n, 120)
                filled = _ask(venue, "fill")
                fill_start = time.perf_counter()
                seen = _watch_filled(engine, n, 300)
                fill_wall = time.perf_counter() - fill_start
                filled_at = _ask(venue, "filled_at")
                received = _fills_received(redis.url, env["BUS_PREFIX"])
                peer = _bare_burst(url, n)  # after the fills: the venue fills every open order
            finally:
                service.terminate()
                service.wait(30)
        with engine.connect() as conn:
            sources = dict(
                conn.execute(
                    sa.text(
                        "SELECT source, count(*) FROM order_events e JOIN orders o "
                        "USING (client_order_id) WHERE o.strategy = 'burst' "
                        "AND e.status = 'filled' GROUP BY source"
                    )
                ).all()
            )
            fills = conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT fill_id), count(DISTINCT client_order_id) "
                    "FROM fills"
                )
            ).one()
    finally:
        engine.dispose()
        redis.cleanup()
    filled_s = {
        coid: datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        for coid, at in filled_at.items()
    }
    to_ledger = [at - filled_s[coid] for coid, at in seen.items()]
    to_client = [received[coid] - filled_s[coid] for coid in seen if coid in received]
    client_to_ledger = [at - received[coid] for coid, at in seen.items() if coid in received]
    print(f"\n## {n} orders released at once ({n} threads, 20 warehouse connections)")
    print("| | p50 | p99 | max | wall | per second |")
    print("|---|---|---|---|---|---|")
    print(
        f"| send_order, release -> ack committed | {_pct(latencies, 50):.0f} ms | "
        f"{_pct(latencies, 99):.0f} ms | {max(latencies) * 1000:.0f} ms | {wall:.2f} s | "
        f"{n / wall:.0f} |"
    )
    print(
        f"| alpaca-py submit_order alone, same burst (peer) | {_pct(peer, 50):.0f} ms | "
        f"{_pct(peer, 99):.0f} ms | {max(peer) * 1000:.0f} ms | | |"
    )
    print(
        f"| fill at the venue -> ledger 'filled' (TradingStream, bus, processor) | "
        f"{_pct(to_ledger, 50):.0f} ms | {_pct(to_ledger, 99):.0f} ms | "
        f"{max(to_ledger) * 1000:.0f} ms | {fill_wall:.2f} s | {n / fill_wall:.0f} |"
    )
    for label, part in (
        ("  of which fill at the venue -> TradingStream client received it", to_client),
        ("  of which client received -> ledger 'filled' (bus, processor)", client_to_ledger),
    ):
        print(
            f"| {label} | {_pct(part, 50):.0f} ms | {_pct(part, 99):.0f} ms | "
            f"{max(part) * 1000:.0f} ms | | |"
        )
    print(
        f"acknowledged {len(ledger)}/{n} (broker id in the ledger = the broker's: {matched}); "
        f"duplicates at the broker {duplicates}; venue filled {filled}; 'filled' events by "
        f"source {sources}; fills rows {fills[0]}, distinct ids {fills[1]}, orders {fills[2]}"
    )


def rebalance_part(engine: sa.Engine, n_symbols: int) -> None:
    from pipelines import calendar
    from pipelines.execution.orders import submit_plan
    from pipelines.execution.reconcile import reconcile
    from pipelines.portfolio.planner import build_plan
    from pipelines.risk.gate import check_plan
    from pipelines.sources.sample import FIRST_SESSION, SampleSource
    from pipelines.validation import validate_bars
    from pipelines.warehouse.bars import upsert_bars

    source = SampleSource()
    symbols = sorted(source.universe())[:n_symbols]
    frame = source.fetch_daily_bars(FIRST_SESSION, DAY, symbols)
    with engine.begin() as conn:
        upsert_bars(conn, validate_bars(frame).valid, "sample")
    as_of = calendar.previous_session(DAY)
    with engine.connect() as conn:
        closes = dict(
            conn.execute(
                sa.text("SELECT symbol, close FROM bars WHERE session_date = :d"), {"d": as_of}
            ).all()
        )
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (model_name, model_version, session_date, symbol, "
                "expected_return, feature_set_version, run_id) VALUES ('m', '1', :d, :s, :r, "
                "'f', 'bench')"
            ),
            [{"d": as_of, "s": s, "r": float(rng.normal(0, 0.002))} for s in closes],
        )
    with local_alpaca(prices=closes, cash=1_000_000.0) as url:
        settings = _settings(url, 4).model_copy(update={"strategy": "bench_rebalance"})
        broker = AlpacaBroker(settings)
        steps = {}
        t = time.perf_counter()
        reconcile(engine, broker, settings, "bench")
        steps["reconcile before"] = time.perf_counter() - t
        t = time.perf_counter()
        plan = build_plan(engine, settings, DAY, "m", "1", "bench")
        steps["optimize (risk model + cvxpy)"] = time.perf_counter() - t
        t = time.perf_counter()
        report = check_plan(engine, settings, plan, broker)
        steps["risk gate"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = submit_plan(engine, settings, plan, broker, "bench")
        steps["submit (acknowledged)"] = time.perf_counter() - t
        t = time.perf_counter()
        reconcile(engine, broker, settings, "bench")
        steps["reconcile after"] = time.perf_counter() - t
    total = sum(steps.values())
    print(f"\n## pre-market rebalance, {len(closes)} symbols with prices, local Alpaca server")
    print("| step | seconds |")
    print("|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **total** | **{total:.2f}** |")
    print(
        f"orders {summary.orders} (sent {summary.sent}), gate approved {report.approved}; "
        f"target 30 s: ratio {total / 30:.2f}; raw limit at Alpaca "
        f"({ALPACA_PER_MINUTE}/min): {summary.orders / ALPACA_PER_MINUTE * 60:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--skip-rebalance", action="store_true")
    parser.add_argument("--concurrent", type=int, default=0, help="burst mode (see above)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="venue -> stream poll")
    args = parser.parse_args()
    url, name = _throwaway_database()
    engine = create_engine(url, get_settings())
    try:
        upgrade(engine)
        if args.concurrent:
            concurrent_part(url, args.concurrent, args.poll_ms)
            return
        orders_part(engine, args.orders, args.concurrency)
        with engine.begin() as conn:  # part 2 starts from an empty book
            conn.execute(
                sa.text(
                    "TRUNCATE order_events, fills, dead_letter_orders, reconciliations, orders, "
                    "target_weights, plans CASCADE"
                )
            )
        if not args.skip_rebalance:
            rebalance_part(engine, args.symbols)
    finally:
        engine.dispose()
        admin = embedded.sqlalchemy_url(
            warehouse_url(get_settings()).replace("postgresql+psycopg://", "postgresql://", 1),
            "postgres",
        ).replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\n(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
