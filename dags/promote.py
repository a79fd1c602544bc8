"""Gated promotion after each training run (or by hand): @challenger replaces @champion only
if it scores better on the same recent window. Rollback is `mltrade models rollback`."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from dag_defaults import DAG_ARGS, DEFAULT_ARGS, MODEL, as_date, date_param


@dag(
    schedule=[MODEL],
    **DAG_ARGS,
    default_args={**DEFAULT_ARGS, "retries": 1},
    description="Gated promotion: @challenger becomes @champion only if it scores better",
    tags=["mltrade", "models"],
    params={
        "as_of": date_param("score both models through this date; empty = latest bars"),
        "version": Param(
            None, type=["null", "string"], description="promote this version without the gate"
        ),
    },
    doc_md=__doc__,
)
def promote():
    @task(inlets=[MODEL])
    def gate(params=None) -> dict:
        from pipelines import jobs

        return jobs.promote_model(as_date(params.get("as_of")), params.get("version") or None)

    gate()


promote()
