"""Ingest through a real vendor client: alpaca-py against the local Alpaca data server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines.errors import DataSourceError
from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource
from tests.unit.sources.alpaca_fixtures import END, START, SYMBOLS, server, source


def test_a_symbol_the_vendor_does_not_know_fails_the_run_but_loses_no_good_bar(
    warehouse: sa.Engine,
) -> None:
    with server() as alpaca, pytest.raises(DataSourceError, match="NOPE") as raised:
        ingest(warehouse, source(alpaca.url), START, END, [*SYMBOLS, "NOPE"], "run-v", 0.05)
    assert "were loaded" in str(raised.value)
    with warehouse.connect() as conn:
        loaded = conn.execute(sa.text("SELECT symbol, count(*) FROM bars GROUP BY 1")).all()
        summary = conn.execute(
            sa.text("SELECT status, summary FROM pipeline_runs WHERE run_id = 'run-v'")
        ).one()
    expected = SampleSource().fetch_daily_bars(START, END, SYMBOLS)
    assert dict(loaded) == expected.groupby("symbol").size().to_dict()
    assert summary.status == "failed"
    assert list(summary.summary["failed_symbols"]) == ["NOPE"]


def test_rerun_without_the_bad_symbol_is_a_no_op(warehouse: sa.Engine) -> None:
    with server() as alpaca:
        with pytest.raises(DataSourceError):
            ingest(warehouse, source(alpaca.url), START, END, [*SYMBOLS, "NOPE"], "r1", 0.05)
        again = ingest(warehouse, source(alpaca.url), START, END, SYMBOLS, "r2", 0.05)
    assert (again.rows_fetched, again.rows_loaded, again.failed_symbols) == (57, 0, {})
