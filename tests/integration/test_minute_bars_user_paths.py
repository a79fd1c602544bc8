"""Minute bars as a user gets them (issue #15, item 8): ``mltrade ingest --timeframe 1min`` and
the ``market_data_intraday`` DAG, against the local Alpaca data server serving one session's
minutes, into ``minute_bars`` and reconciled with that session's daily bar.

The gate's minute rules and the reconciliation arithmetic are tested on ``ingest_minutes``
itself in ``test_ingest_minutes.py``; here the entry points: arguments, settings, the Airflow
connection, the run records, and what a user sees when minute bars cannot be had (the
offline ``sample`` source has daily bars only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource
from tests.support.alpaca_data_server import (
    HIGH_MINUTE,
    AlpacaDataServer,
    minute_bars,
    sample_bars,
)
from tests.support.cli import run_cli
from tests.support.corpus import rows
from tests.unit.sources.alpaca_fixtures import KEY, SECRET, source

DAY = date(2010, 1, 4)  # open 14:30 UTC, close 21:00 UTC: 390 minutes
EARLY = date(2009, 11, 27)  # the day after Thanksgiving: closes at 13:00, 210 minutes
SYMBOLS = ["AAPL", "IBM"]


@pytest.fixture(scope="module")
def alpaca() -> Iterator[AlpacaDataServer]:
    daily = {s: sample_bars(SYMBOLS, EARLY, EARLY)[s] + sample_bars(SYMBOLS, DAY, DAY)[s]
             for s in SYMBOLS}  # fmt: skip
    minutes = {s: minute_bars(daily[s][0], EARLY) + minute_bars(daily[s][1], DAY)
               for s in SYMBOLS}  # fmt: skip
    with AlpacaDataServer({"1Day": daily, "1Min": minutes}, KEY, SECRET) as server:
        yield server


@pytest.fixture
def alpaca_env(alpaca: AlpacaDataServer, monkeypatch: pytest.MonkeyPatch) -> AlpacaDataServer:
    """The settings a user puts in ``.env`` for Alpaca, pointed at the local server."""
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setenv("ALPACA_DATA_URL", alpaca.url)
    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    monkeypatch.setenv("DATA_SOURCE", "sample")  # --source overrides it (and is undone after)
    monkeypatch.setenv("VALIDATION_DATA_DOCS", "false")
    monkeypatch.setenv("SOURCE_RETRY_INITIAL_WAIT_S", "0")
    return alpaca


def _reconciliation(engine: sa.Engine, session: date) -> dict[str, Any]:
    (row,) = rows(
        engine,
        "SELECT run_id, summary->'reconciliation' AS r FROM validation_runs "
        f"WHERE summary->'reconciliation' IS NOT NULL AND start_date = '{session.isoformat()}'",
    )
    return dict(row.r)


def test_mltrade_ingest_timeframe_1min(
    alpaca_env: AlpacaDataServer,
    warehouse: sa.Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Daily bars, then the session's minutes, as a user types them; then a rerun (a no-op)
    and a session whose minutes disagree with its daily bar."""
    day = str(DAY)
    daily = run_cli(capsys, "ingest", "--source", "alpaca", "--start", day, "--end", day)
    assert daily.code == 0, daily.err
    done = run_cli(capsys, "ingest", "--source", "alpaca", "--timeframe", "1min",
                   "--start", day, "--end", day)  # fmt: skip
    assert done.code == 0, done.err
    stored = rows(warehouse, "SELECT symbol, count(*) AS n, min(ts) AS first, max(ts) AS last, "
                  "sum(volume) AS v FROM minute_bars GROUP BY symbol ORDER BY symbol")  # fmt: skip
    assert [(r.symbol, r.n) for r in stored] == [("AAPL", 390), ("IBM", 390)]
    assert {(r.first.isoformat(), r.last.isoformat()) for r in stored} == {
        ("2010-01-04T14:31:00+00:00", "2010-01-04T21:00:00+00:00")  # ts = the minute's end
    }
    assert rows(warehouse, "SELECT count(*) FROM quarantine")[0][0] == 0
    report = _reconciliation(warehouse, DAY)
    assert (report["checked"], report["mismatches"]) == (2, {})
    assert report["tolerance"] == pytest.approx(0.002)  # MINUTE_RECONCILE_TOLERANCE

    again = run_cli(capsys, "ingest", "--source", "alpaca", "--timeframe", "1min",
                    "--start", day, "--end", day)  # fmt: skip
    assert again.code == 0, again.err
    assert rows(warehouse, "SELECT count(*) FROM minute_bars")[0][0] == 780


def test_minutes_that_disagree_with_the_daily_bar_are_reported_not_unloaded(
    alpaca_env: AlpacaDataServer,
    warehouse: sa.Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An early close (210 minutes) whose IBM high is 1 % above the daily high, through the
    CLI with a looser and a tighter ``MINUTE_RECONCILE_TOLERANCE``."""
    ingest(warehouse, source(alpaca_env.url), EARLY, EARLY, SYMBOLS, "daily", 0.05)
    minutes = alpaca_env.bars["1Min"]["IBM"]
    top = dict(minutes[HIGH_MINUTE])
    minutes[HIGH_MINUTE] = {**top, "h": round(top["h"] * 1.01, 2)}
    day = str(EARLY)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MINUTE_RECONCILE_TOLERANCE", "0.02")
            loose = run_cli(capsys, "ingest", "--source", "alpaca", "--timeframe", "1min",
                            "--start", day, "--end", day)  # fmt: skip
        assert loose.code == 0, loose.err
        assert _reconciliation(warehouse, EARLY)["mismatches"] == {}
        with warehouse.begin() as conn:
            conn.execute(sa.text("DELETE FROM validation_runs"))
        tight = run_cli(capsys, "ingest", "--source", "alpaca", "--timeframe", "1min",
                        "--start", day, "--end", day)  # fmt: skip
    finally:
        minutes[HIGH_MINUTE] = top
    assert tight.code == 0, tight.err  # reported, not a failure: which series is wrong?
    report = _reconciliation(warehouse, EARLY)
    assert list(report["mismatches"]) == ["IBM"]
    assert "high" in report["mismatches"]["IBM"] and "210 minutes" in report["mismatches"]["IBM"]
    counts = rows(warehouse, "SELECT symbol, count(*) FROM minute_bars GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in counts] == [("AAPL", 210), ("IBM", 210)]  # nothing unloaded


def test_minute_bars_from_the_sample_source_fail_in_one_line(
    warehouse: sa.Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The offline default has no minute bars: one line naming the setting, exit code 2,
    nothing written."""
    monkeypatch.setenv("DATA_SOURCE", "sample")
    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    done = run_cli(capsys, "ingest", "--timeframe", "1min", "--start", str(DAY), "--end", str(DAY))
    assert done.code == 2
    assert done.err.strip().count("\n") == 0, done.err
    assert done.err.startswith("error: DATA_SOURCE=sample has no minute bars")
    assert "set DATA_SOURCE=alpaca" in done.err
    assert rows(warehouse, "SELECT count(*) FROM minute_bars")[0][0] == 0
    assert SampleSource().fetch_daily_bars(DAY, DAY, SYMBOLS).shape[0] == 2  # daily bars only


def _intraday_dag(retries: int | None = 0) -> Any:
    import market_data_intraday
    from airflow.utils.db import upgradedb

    upgradedb()
    dag = market_data_intraday.market_data_intraday()
    for task in dag.tasks:
        task.retries = task.retries if retries is None else retries
    return dag


@pytest.mark.slow
def test_market_data_intraday_dag_loads_one_session_from_alpaca(
    alpaca: AlpacaDataServer, warehouse: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dag.test()`` for one session, the keys only in the ``alpaca_data`` connection."""
    from pipelines.config import get_settings

    ingest(warehouse, source(alpaca.url), DAY, DAY, SYMBOLS, "daily", 0.05)
    monkeypatch.setenv("DATA_SOURCE", "alpaca")
    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ALPACA_DATA", json.dumps(
        {"conn_type": "http", "login": KEY, "password": SECRET, "host": alpaca.url}
    ))  # fmt: skip
    get_settings.cache_clear()
    try:
        run = _intraday_dag().test(run_conf={"start": str(DAY), "end": str(DAY)})
    finally:
        get_settings.cache_clear()
    assert run.state == "success"
    assert rows(warehouse, "SELECT count(*) FROM minute_bars")[0][0] == 780
    report = _reconciliation(warehouse, DAY)
    assert (report["checked"], report["mismatches"]) == (2, {})
    (stage,) = rows(warehouse, "SELECT status, summary FROM pipeline_runs "
                    "WHERE stage = 'ingest_minutes'")  # fmt: skip
    assert stage.status == "success"
    assert stage.summary["rows_loaded"] == 780


@pytest.mark.slow
def test_market_data_intraday_dag_on_the_sample_source_fails_in_one_line(
    warehouse: sa.Engine, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The offline default (``DATA_SOURCE=sample``, daily bars only): a run for a session of
    the sample fails at once, its retries unused, and the task log ends saying why."""
    from pipelines.config import get_settings

    monkeypatch.setenv("DATA_SOURCE", "sample")
    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    get_settings.cache_clear()
    dag = _intraday_dag(retries=None)
    assert dag.tasks[0].retries == 2  # the DAG's own: a retry would wait a minute here
    capfd.readouterr()
    try:
        run = dag.test(run_conf={"start": str(DAY), "end": str(DAY)})
    finally:
        get_settings.cache_clear()
    log = capfd.readouterr()
    assert run.state == "failed"
    reason = [line for line in (log.out + log.err).splitlines() if "FailException:" in line]
    assert reason == [
        "airflow.sdk.exceptions.AirflowFailException: DATA_SOURCE=sample has no minute bars "
        "(only Alpaca has them: the sample data is daily); set DATA_SOURCE=alpaca with "
        "ALPACA_API_KEY/ALPACA_SECRET_KEY or the alpaca_data Airflow connection "
        "(docs/sources.md)"
    ]
    assert "up_for_retry" not in (log.out + log.err).lower()
    assert rows(warehouse, "SELECT count(*) FROM minute_bars")[0][0] == 0
