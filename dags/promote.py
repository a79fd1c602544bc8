"""Gated promotion after each training run (or by hand): @challenger replaces @champion only
if it scores better on the same recent window. Rollback is `mltrade models rollback`."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from dag_defaults import DEFAULT_ARGS, MODEL, START_DATE, as_date


@dag(
    schedule=[MODEL],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1},
    tags=["mltrade", "models"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="score both models through this date; empty = latest bars",
        ),
        "version": Param(
            None, type=["null", "string"], description="promote this version without the gate"
        ),
    },
    doc_md=__doc__,
)
def promote():
    @task
    def gate(params=None) -> dict:
        from pipelines import jobs

        return jobs.promote_model(as_date(params.get("as_of")), params.get("version") or None)

    gate()


promote()
