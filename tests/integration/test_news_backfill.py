"""The news DAG: its timetable, and a backfill of hourly runs (``dag.test()`` per interval)
writes exactly what one ``mltrade news`` run over the same range writes."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pendulum
import pytest
import sqlalchemy as sa
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.base import TimeRestriction

from pipelines.features import sentiment
from pipelines.news import store

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
SESSION = date(2024, 3, 12)
CUT = sentiment.cutoff(SESSION)  # 11:30 UTC (07:30 New York, daylight time)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
        return DagBag(dag_folder=str(DAGS_DIR))


def test_hourly_intervals_end_at_the_cutoff_on_weekdays(dagbag: DagBag) -> None:
    timetable = dagbag.dags["news"].timetable
    restriction = TimeRestriction(
        earliest=pendulum.instance(CUT - timedelta(hours=2)), latest=None, catchup=True
    )
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    ends = []
    for _ in range(3):
        ends.append(info.data_interval.end)
        info = timetable.next_dagrun_info(
            last_automated_data_interval=info.data_interval, restriction=restriction
        )
    assert CUT in ends and all(
        b - a == timedelta(hours=1) for a, b in zip(ends, ends[1:], strict=False)
    )
    friday = sentiment.cutoff(date(2024, 3, 15)) + timedelta(hours=16)  # 23:30 New York
    weekend = timetable.next_dagrun_info(
        last_automated_data_interval=timetable.infer_manual_data_interval(
            run_after=pendulum.instance(friday)
        ),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert weekend.data_interval.end - weekend.data_interval.start == timedelta(hours=49)
    assert {o.name for t in dagbag.dags["news"].tasks for o in t.outlets} == {"news"}


def _state(engine: sa.Engine, start: datetime, end: datetime) -> tuple[str, list]:
    with engine.connect() as conn:
        items = store.fingerprint(conn, start, end)
        features = conn.execute(
            sa.text(
                'SELECT session_date, symbol, "values"::text FROM features '
                "WHERE feature_set = 'sentiment' ORDER BY 1, 2"
            )
        ).all()
    return items, [tuple(r) for r in features]


@pytest.mark.slow
def test_a_backfill_equals_one_cli_run(warehouse, settings, monkeypatch) -> None:
    from airflow.utils.db import upgradedb
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.config import get_settings
    from tests.support.warehouse import empty_data_tables

    monkeypatch.setenv("UNIVERSE", ",".join(f"S{i}" for i in range(40)) + ",AAPL,MSFT,IBM")
    monkeypatch.setenv("NEWS_SOURCES", "fixtures")
    get_settings.cache_clear()
    start, end = CUT - timedelta(hours=1), CUT + timedelta(hours=1)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgradedb()
    dag = DagBag(dag_folder=str(DAGS_DIR)).dags["news"]
    for hour in range(2):  # [10:30, 11:30) ends at the cutoff, [11:30, 12:30) UTC
        run = dag.test(logical_date=start + timedelta(hours=hour + 1))
        assert run.state == "success"
        assert run.data_interval_start == start + timedelta(hours=hour)
    backfilled = _state(warehouse, start, end)
    assert backfilled[1], "the run ending at the cutoff wrote the session's features"

    empty_data_tables(warehouse)
    result = CliRunner().invoke(
        app, ["news", "--start", start.isoformat(), "--end", end.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert _state(warehouse, start, end) == backfilled
