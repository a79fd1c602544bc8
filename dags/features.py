"""Recompute point-in-time features whenever new bars land (or a range, on demand)."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from dag_defaults import BARS, DEFAULT_ARGS, FEATURES, START_DATE, as_date


@dag(
    schedule=[BARS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mltrade", "features"],
    params={
        "start": Param(
            None, type=["null", "string"], format="date", description="first session; empty = all"
        ),
        "end": Param(
            None, type=["null", "string"], format="date", description="last session; empty = all"
        ),
    },
    doc_md=__doc__,
)
def features():
    @task(outlets=[FEATURES])
    def build(params=None, run_id=None) -> dict:
        from pipelines import jobs

        return jobs.build_features(as_date(params.get("start")), as_date(params.get("end")), run_id)

    build()


features()
