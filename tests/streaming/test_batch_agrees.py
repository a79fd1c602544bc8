"""Batch and stream agree: the minute bars that arrived by stream equal the same session
fetched in batch through the REST bars (alpaca-py's historical client), and their daily
aggregate (``daily_from_minute``) equals the real daily bar they were recorded from."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.sources.alpaca import AlpacaSource
from pipelines.sources.sample import SampleSource
from tests.support.alpaca_data_server import AlpacaDataServer
from tests.support.alpaca_stream_server import AlpacaStreamServer, rest_minute_bars, sample_day
from tests.support.streaming import (
    ServiceThread,
    count_rows,
    stored_bars,
    stream_settings,
    wait_for,
)

SESSION = date(2010, 3, 3)
SYMBOLS = ["IBM", "MSFT"]
PRICE_TOLERANCE = 1e-9  # USD: the aggregate is exact up to float formatting


def test_stream_equals_batch_and_daily_bar(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    day = sample_day(SYMBOLS, SESSION)
    with AlpacaStreamServer() as server:
        settings = stream_settings(redis_url, bus_prefix, server).model_copy(
            update={"universe": SYMBOLS}
        )
        with ServiceThread(settings, warehouse):
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(day)
            wait_for(lambda: count_rows(warehouse) == len(day), "the whole session")
    streamed = stored_bars(warehouse)
    with AlpacaDataServer({"1Min": rest_minute_bars(day)}) as rest:
        source = AlpacaSource("test-key", "test-secret", url=rest.url)
        batch = source.fetch_minute_bars(SESSION, SESSION, SYMBOLS)
    batch = batch[["symbol", "ts", "open", "high", "low", "close", "volume"]].copy()
    batch["ts"] = pd.to_datetime(batch["ts"], utc=True)
    batch = batch.sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, batch, check_dtype=False)

    with warehouse.connect() as conn:
        daily = pd.read_sql(
            sa.text(
                "SELECT symbol, open, high, low, close, volume, minutes "
                "FROM daily_from_minute ORDER BY symbol"
            ),
            conn,
        )
    real = SampleSource().fetch_daily_bars(SESSION, SESSION, SYMBOLS).sort_values("symbol")
    assert daily["minutes"].tolist() == [390, 390]
    for column in ("open", "high", "low", "close"):
        assert daily[column].tolist() == pytest.approx(real[column].tolist(), abs=PRICE_TOLERANCE)
    assert daily["volume"].tolist() == real["volume"].tolist()
