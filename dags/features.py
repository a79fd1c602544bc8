"""Recompute point-in-time features whenever new bars land (or a range, on demand)."""

from __future__ import annotations

from airflow.sdk import dag, task
from dag_defaults import BARS, DAG_ARGS, DEFAULT_ARGS, FEATURES, as_date, date_param


@dag(
    schedule=[BARS],
    **DAG_ARGS,
    default_args=DEFAULT_ARGS,
    description="Point-in-time characteristics from the bars, rebuilt when new bars land",
    tags=["mltrade", "features"],
    params={
        "start": date_param("first session; empty = all"),
        "end": date_param("last session; empty = all"),
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
