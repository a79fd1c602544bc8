"""Ingest throughput: the project's upsert path vs raw COPY, and peak memory by row count.

Synthetic but realistic daily bars (geometric random walks per symbol, OHLC consistent,
lognormal volumes, real NYSE session closes) are generated in chunks of symbols and each chunk
is loaded twice in the same run, timed separately:

* **upsert**: :func:`pipelines.warehouse.bars.upsert_bars` into the partitioned ``bars``
  table, one transaction a chunk: new rows are copied straight in (nothing to merge);
  ``--merge-only`` forces the temporary table + ``INSERT … ON CONFLICT`` path for every chunk;
* **raw COPY**: the same rows, same client-side encoding, ``COPY`` into a table shaped like
  ``bars`` with the same primary-key index (``LIKE bars INCLUDING DEFAULTS INCLUDING
  INDEXES``): the real limit of an idempotent load, which must maintain that index.

Then the same rows are loaded again (the merge path, changing nothing) and timed.
Only the database calls are timed (not the data generation). Peak RSS is the process's
``ru_maxrss``; ``--sweep`` runs each size in its own process so the figures do not mix.

    .venv/bin/python benchmarks/ingest.py                      # 2,000 symbols x 500 sessions
    .venv/bin/python benchmarks/ingest.py --sweep 1000000,5000000

Uses ``WAREHOUSE_URL`` if set, else the embedded PostgreSQL under ``MLTRADE_HOME``; works in a
throwaway database ``mltrade_bench_<pid>`` dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd

SEED = 20100820


def sessions(count: int) -> pd.DataFrame:
    """``count`` NYSE sessions from 2015-01-02: session_date and the close in UTC."""
    from pipelines import calendar

    frame = calendar.schedule(date(2015, 1, 2), date(2040, 12, 31)).iloc[:count]
    return pd.DataFrame({"session_date": list(frame.index), "ts": frame["close"].to_numpy()})


def synthetic_bars(symbols: list[str], days: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Daily bars of ``symbols`` over ``days``: one geometric random walk per symbol.

    Close follows exp(cumulative normal returns) with a per-symbol volatility of 1-4% a day;
    open gaps from the previous close; high/low extend beyond max/min(open, close); volume is
    lognormal around a per-symbol level (1e5 to 1e7 shares) and rises with |return|.
    """
    rng = np.random.default_rng(seed)
    n, t = len(symbols), len(days)
    vol = rng.uniform(0.01, 0.04, size=(n, 1))
    returns = rng.normal(0.0003, 1.0, size=(n, t)) * vol
    close = np.exp(rng.normal(3.5, 1.0, size=(n, 1)) + np.cumsum(returns, axis=1))
    prev = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, 1.0, size=(n, t)) * vol / 3)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, 1.0, size=(n, t))) * vol / 2)
    low = bottom * np.exp(-np.abs(rng.normal(0.0, 1.0, size=(n, t))) * vol / 2)
    level = 10 ** rng.uniform(5, 7, size=(n, 1))
    volume = np.round(level * rng.lognormal(0.0, 0.3, size=(n, t)) * (1 + np.abs(returns) / vol))
    return pd.DataFrame(
        {
            "symbol": np.repeat(symbols, t),
            "ts": np.tile(days["ts"].to_numpy(), n),
            "session_date": np.tile(days["session_date"].to_numpy(), n),
            "open": open_.round(4).ravel(),
            "high": high.round(4).ravel(),
            "low": low.round(4).ravel(),
            "close": close.round(4).ravel(),
            "volume": volume.ravel(),
        }
    )


def chunks(n_symbols: int, days: pd.DataFrame, chunk_symbols: int) -> Iterator[pd.DataFrame]:
    """The whole panel, ``chunk_symbols`` symbols at a time (memory stays flat)."""
    for first in range(0, n_symbols, chunk_symbols):
        names = [f"S{i:05d}" for i in range(first, min(first + chunk_symbols, n_symbols))]
        yield synthetic_bars(names, days, SEED + first)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _database() -> tuple[str, str]:
    """(SQLAlchemy URL of a fresh benchmark database, admin libpq URI)."""
    from pipelines.config import get_settings
    from pipelines.warehouse import embedded

    settings = get_settings()
    url = settings.warehouse_url or embedded.start(settings.home / "postgres")
    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"mltrade_bench_{os.getpid()}"
    embedded.ensure_database(admin, name)
    return embedded.sqlalchemy_url(admin, name), admin


def run(
    n_symbols: int, n_sessions: int, chunk_symbols: int, merge_only: bool, reload: bool
) -> dict:
    import psycopg

    from pipelines.config import get_settings
    from pipelines.warehouse import embedded
    from pipelines.warehouse.bars import upsert_bars
    from pipelines.warehouse.engine import copy_frame, create_engine
    from pipelines.warehouse.migrate import upgrade
    from pipelines.warehouse.partitions import backend, ensure_partitions

    if merge_only:  # time the temp-table + ON CONFLICT path even for new rows
        from pipelines.warehouse import bars

        bars._any_stored = lambda conn, rows: True  # type: ignore[attr-defined]
    days = sessions(n_sessions)
    url, admin = _database()
    engine = create_engine(url, get_settings())
    columns = ("symbol", "ts", "session_date", "open", "high", "low", "close", "volume", "source")
    try:
        upgrade(engine)
        with engine.begin() as conn:
            kind = backend(conn, "bars")
            ensure_partitions(
                conn, "bars", days["session_date"].iloc[0], days["session_date"].iloc[-1]
            )
            conn.exec_driver_sql(
                "CREATE TABLE raw_bars (LIKE bars INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
        rows, t_upsert, t_copy, t_reload = 0, 0.0, 0.0, 0.0
        for frame in chunks(n_symbols, days, chunk_symbols):
            t0 = time.perf_counter()
            with engine.begin() as conn:
                upsert_bars(conn, frame, "bench")
            t1 = time.perf_counter()
            with engine.begin() as conn:
                copy_frame(conn, "raw_bars", frame.assign(source="bench"), columns)
            t2 = time.perf_counter()
            rows += len(frame)
            t_upsert += t1 - t0
            t_copy += t2 - t1
        if reload:  # the same rows again: the merge path, which finds nothing to change
            for frame in chunks(n_symbols, days, chunk_symbols):
                t0 = time.perf_counter()
                with engine.begin() as conn:
                    if upsert_bars(conn, frame, "bench") != 0:
                        raise RuntimeError("a reload of identical rows changed something")
                t_reload += time.perf_counter() - t0
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM bars").scalar_one()
            raw = conn.exec_driver_sql("SELECT count(*) FROM raw_bars").scalar_one()
        if not stored == raw == rows:
            raise RuntimeError(f"row counts differ: generated {rows}, bars {stored}, raw {raw}")
        server = engine.dialect.server_version_info
    finally:
        engine.dispose()
        with psycopg.connect(
            embedded.sqlalchemy_url(admin, "postgres").replace(
                "postgresql+psycopg://", "postgresql://", 1
            ),
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "mltrade_bench_{os.getpid()}" WITH (FORCE)')
    return {
        "rows": rows,
        "bars_backend": kind,
        "server": ".".join(map(str, server or ())),
        "upsert_rows_s": rows / t_upsert,
        "copy_rows_s": rows / t_copy,
        "ratio": t_copy / t_upsert,
        "reload_rows_s": rows / t_reload if t_reload else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--chunk-symbols", type=int, default=100, help="symbols per transaction")
    parser.add_argument("--sweep", help="comma-separated row counts, each in its own process")
    parser.add_argument(
        "--merge-only", action="store_true", help="always take the temp-table + merge path"
    )
    parser.add_argument("--no-reload", action="store_true", help="skip the identical reload")
    args = parser.parse_args()
    if args.sweep:
        for total in (int(x) for x in args.sweep.split(",")):
            n_symbols = total // args.sessions
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--symbols",
                    str(n_symbols),
                    "--sessions",
                    str(args.sessions),
                    "--chunk-symbols",
                    str(args.chunk_symbols),
                ],
                check=True,
            )
        return
    result = run(
        args.symbols, args.sessions, args.chunk_symbols, args.merge_only, not args.no_reload
    )
    path = "temp table + merge (forced)" if args.merge_only else "project's upsert"
    reload = (
        f"  reload of the same rows (merge, no change):  {result['reload_rows_s']:>10,.0f} rows/s\n"
        if result["reload_rows_s"]
        else ""
    )
    print(
        f"rows={result['rows']:,} ({args.symbols} symbols x {args.sessions} sessions, "
        f"{args.chunk_symbols} symbols per transaction) PostgreSQL {result['server']}, "
        f"bars {result['bars_backend']}\n"
        f"  {path + ' of new rows:':<44} {result['upsert_rows_s']:>10,.0f} rows/s\n"
        f"  raw COPY into the same indexed table:        {result['copy_rows_s']:>10,.0f} rows/s\n"
        f"{reload}"
        f"  ratio upsert/raw COPY: {result['ratio']:.0%}   "
        f"peak RSS: {result['peak_rss_mb']:,.0f} MB",
        flush=True,
    )


if __name__ == "__main__":
    main()
