"""Helpers of the streaming tests: settings for the local servers, a service in a thread,
waiting for rows, and the rows a clean run must leave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic import SecretStr

from pipelines.config import Settings, get_settings
from pipelines.streaming.service import Role, StreamService
from tests.support.alpaca_stream_server import AlpacaStreamServer

SYMBOLS = ["AAPL", "IBM", "MSFT"]


def stream_settings(
    redis_url: str, prefix: str, server: AlpacaStreamServer, **changes: Any
) -> Settings:
    get_settings.cache_clear()
    return get_settings().model_copy(
        update={
            "alpaca_api_key": SecretStr(server.api_key),
            "alpaca_secret_key": SecretStr(server.secret_key),
            "stream_data_url": server.data_url,
            "stream_trading_url": server.trading_url,
            "bus_url": redis_url,
            "bus_prefix": prefix,
            "bus_claim_idle_ms": 500,
            "stream_block_ms": 20,
            "universe": SYMBOLS,
            **changes,
        }
    )


class ServiceThread:
    """A :class:`StreamService` running in a thread of the test process."""

    def __init__(
        self, settings: Settings, engine: sa.Engine | None, role: Role = "all", **kw: Any
    ) -> None:
        self.service = StreamService(
            settings, engine, role, metrics_port=0, metrics_addr="127.0.0.1", **kw
        )
        self.thread = threading.Thread(target=self.service.run, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> StreamService:
        self.thread.start()
        return self.service

    def __exit__(self, *exc: object) -> None:
        self.service.stop()
        self.thread.join(30)
        self.service.bus.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` until truthy; fail naming ``what`` (a bound, not a speed check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


def count_rows(engine: sa.Engine, table: str = "minute_bars") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored_bars(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.text(
                "SELECT symbol, ts, open, high, low, close, volume FROM minute_bars "
                "ORDER BY symbol, ts"
            ),
            conn,
        )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def expected_bars(messages: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows a clean run of ``messages`` (valid bars) leaves in ``minute_bars``."""
    frame = pd.DataFrame(
        [
            {
                "symbol": m["S"],
                "ts": m["t"] + timedelta(minutes=1),
                "open": m["o"],
                "high": m["h"],
                "low": m["l"],
                "close": m["c"],
                "volume": float(m["v"]),
            }
            for m in messages
        ]
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values(["symbol", "ts"]).reset_index(drop=True)
