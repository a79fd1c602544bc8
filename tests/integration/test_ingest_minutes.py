"""Minute bars through alpaca-py from the local Alpaca server, the gate, into ``minute_bars``,
reconciled with the daily bar of the same session."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.ingest import ingest
from pipelines.ingest_minutes import ingest_minutes
from pipelines.validation import validate_minute_bars
from tests.support.alpaca_data_server import (
    HIGH_MINUTE,
    AlpacaDataServer,
    minute_bars,
    sample_bars,
)
from tests.unit.sources.alpaca_fixtures import KEY, SECRET, source

DAY = date(2010, 1, 4)  # open 14:30 UTC, close 21:00 UTC
SYMBOLS = ["AAPL", "IBM"]


@pytest.fixture
def alpaca() -> Any:
    daily = sample_bars(SYMBOLS, DAY, DAY)
    minutes = {s: minute_bars(daily[s][0], DAY) for s in SYMBOLS}
    with AlpacaDataServer({"1Day": daily, "1Min": minutes}, KEY, SECRET) as server:
        yield server


def _count(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_minutes_load_through_the_gate_and_reconcile(alpaca: Any, warehouse: sa.Engine) -> None:
    vendor = source(alpaca.url)
    vendor.page_limit = 10_000
    ingest(warehouse, vendor, DAY, DAY, SYMBOLS, "daily", 0.05)
    bad = {**alpaca.bars["1Min"]["IBM"][5], "t": "2010-01-04T21:30:00Z"}  # after the close
    moved = {**alpaca.bars["1Min"]["AAPL"][7], "t": "2010-01-04T14:37:00Z", "v": 0,
             "h": 999.0}  # fmt: skip
    alpaca.bars["1Min"]["IBM"].append(bad)
    alpaca.bars["1Min"]["AAPL"][7] = moved
    summary = ingest_minutes(warehouse, vendor, DAY, SYMBOLS, "min-1", 0.05)
    assert (summary.rows_fetched, summary.rows_loaded, summary.rows_quarantined) == (781, 779, 2)
    assert _count(warehouse, "SELECT count(*) FROM minute_bars") == 779
    with warehouse.connect() as conn:
        held = dict(conn.execute(sa.text("SELECT symbol, expectation FROM quarantine")).all())
    assert held == {"IBM": "bar_time", "AAPL": "zero_volume_no_move"}
    assert summary.reconciliation["checked"] == 2
    assert summary.reconciliation["mismatches"] == {}
    again = ingest_minutes(warehouse, vendor, DAY, SYMBOLS, "min-2", 0.05)
    assert again.rows_loaded == 0  # idempotent


def test_a_minute_series_that_disagrees_with_the_daily_bar_is_reported(
    alpaca: Any, warehouse: sa.Engine
) -> None:
    vendor = source(alpaca.url)
    vendor.page_limit = 10_000
    ingest(warehouse, vendor, DAY, DAY, SYMBOLS, "daily", 0.05)
    top = alpaca.bars["1Min"]["IBM"][HIGH_MINUTE]
    top["h"] = round(top["h"] * 1.01, 2)  # a high 1 % above the daily high
    summary = ingest_minutes(warehouse, vendor, DAY, SYMBOLS, "min-3", 0.05, tolerance=0.002)
    assert list(summary.reconciliation["mismatches"]) == ["IBM"]
    assert "high" in summary.reconciliation["mismatches"]["IBM"]
    with warehouse.connect() as conn:
        recorded = conn.execute(
            sa.text("SELECT summary->'reconciliation' FROM validation_runs WHERE run_id='min-3'")
        ).scalar_one()
    assert list(recorded["mismatches"]) == ["IBM"]


def test_validate_minute_bars_is_the_streaming_entry_point() -> None:
    ts = pd.Timestamp("2010-01-04 14:31", tz="UTC")
    frame = pd.DataFrame(
        {
            "symbol": ["IBM", "IBM", "IBM"],
            "ts": [ts, ts + pd.Timedelta(minutes=1), pd.Timestamp("2010-01-04 22:00", tz="UTC")],
            "session_date": [DAY] * 3,
            "open": [130.0, 130.0, 130.0],
            "high": [130.5, 130.0, 130.0],
            "low": [129.9, 130.0, 130.0],
            "close": [130.1, 130.0, 130.0],
            "volume": [100.0, 0.0, 5.0],
        }
    )
    result = validate_minute_bars(frame, start=DAY, end=DAY)
    assert list(result.valid["ts"]) == [ts, ts + pd.Timedelta(minutes=1)]  # a flat 0-volume ok
    assert list(result.rejected["expectation"]) == ["bar_time"]
    assert "outside the regular hours" in result.rejected["reason"].iloc[0]
