"""Two tasks for the statsd test: ``ok`` succeeds, then ``grp.boom`` (in a task group) fails."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task, task_group


@dag(dag_id="statsd_probe", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC),
     tags=["test"])
def statsd_probe() -> None:
    @task
    def ok() -> int:
        return 1

    @task_group(group_id="grp")
    def grp() -> None:
        @task
        def boom() -> None:
            raise ValueError("expected failure")

        boom()

    ok() >> grp()


statsd_probe()
