"""Ingest through a real vendor client: alpaca-py against the local Alpaca data server."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pipelines.errors import DataSourceError
from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource
from tests.unit.sources.alpaca_fixtures import END, KEY, SECRET, START, SYMBOLS, server, source


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


@pytest.mark.slow
def test_market_data_dag_takes_alpacas_keys_from_an_airflow_connection(
    warehouse: sa.Engine, monkeypatch
) -> None:
    """DATA_SOURCE=alpaca with the keys only in the ``alpaca_data`` connection, not the env."""
    import market_data
    from airflow.utils.db import upgradedb

    from pipelines.config import get_settings

    with server() as alpaca:
        monkeypatch.setenv("DATA_SOURCE", "alpaca")
        monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
        monkeypatch.delenv("ALPACA_API_KEY", raising=False)
        monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
        monkeypatch.setenv(
            "AIRFLOW_CONN_ALPACA_DATA",
            json.dumps(
                {"conn_type": "http", "login": KEY, "password": SECRET, "host": alpaca.url}
            ),
        )
        get_settings.cache_clear()
        upgradedb()
        dag = market_data.market_data()
        for task in dag.tasks:
            task.retries = 0
        run = dag.test(run_conf={"start": START.isoformat(), "end": END.isoformat()})
        get_settings.cache_clear()
    assert run.state == "success"
    assert alpaca.requests and alpaca.requests[0]["headers"]["apca-api-key-id"] == KEY
    with warehouse.connect() as conn:
        sources = dict(conn.execute(sa.text("SELECT source, count(*) FROM bars GROUP BY 1")).all())
    assert sources == {"alpaca": 57}
