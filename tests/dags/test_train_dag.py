"""The train DAG: a monthly timetable with month-wide data intervals, and runs on demand."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.base import TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    with pytest.MonkeyPatch.context() as mp:  # parsing must not need the warehouse
        mp.setenv("WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
        return DagBag(dag_folder=str(DAGS_DIR))


def test_train_is_scheduled_monthly_on_the_month_that_ended(dagbag: DagBag) -> None:
    dag = dagbag.dags["train"]
    timetable = dag.timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.summary == "0 6 1 * *"
    restriction = TimeRestriction(earliest=datetime(2010, 1, 15, tzinfo=UTC),
                                  latest=None, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    start, end = info.data_interval.start, info.data_interval.end
    # 06:00 in New York (EST, UTC-5) on the first of two consecutive months
    assert (start.month, start.day, start.hour) == (2, 1, 11)
    assert (end.month, end.day, end.hour) == (3, 1, 11)
    following = timetable.next_dagrun_info(last_automated_data_interval=info.data_interval,
                                           restriction=restriction)
    assert following.data_interval.start == end
    assert "as_of" in dag.params


def test_promote_runs_after_training_or_by_hand(dagbag: DagBag) -> None:
    dag = dagbag.dags["promote"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert {"as_of", "version"} <= set(dag.params)
    produced = {o.name for t in dagbag.dags["train"].tasks for o in t.outlets}
    assert "model" in produced


@pytest.mark.slow
def test_a_manual_run_without_a_date_trains_on_the_newest_bars(
    warehouse, load_sample_bars, tmp_path, monkeypatch
) -> None:
    from airflow.utils.db import upgradedb

    from pipelines.config import get_settings
    from pipelines.features.store import build_features
    from pipelines.models import ModelRef
    from pipelines.models.registry import MLflowRegistry

    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    load_sample_bars(["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T",
                      "PFE", "MRK"])
    build_features(warehouse)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgradedb()
    dag = DagBag(dag_folder=str(DAGS_DIR)).dags["train"]
    run = dag.test()
    assert run.state == "success"
    settings = get_settings()
    registry = MLflowRegistry(settings)
    version = registry.alias_version(settings.model_name, "champion")  # the first model
    tags = registry.tags(ModelRef(settings.model_name, version))
    # The newest bar is 2010-08-20: the last label is the return into its close.
    assert tags["train_end"] == str(date(2010, 8, 19))
    get_settings.cache_clear()
