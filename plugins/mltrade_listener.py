"""Airflow listener: every finished task instance becomes Prometheus series.

``mltrade_airflow_task_runs_total{dag_id, task_id, state}`` and
``mltrade_airflow_task_duration_seconds{dag_id, task_id}`` (see
:mod:`pipelines.monitoring.metrics`), pushed to ``PUSHGATEWAY_URL`` when it is set (the task
process is short-lived: nothing could scrape it). It runs in the task's process, after the
task; it never raises, so monitoring cannot fail a task.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


def _seconds(task_instance: Any) -> float | None:
    start = getattr(task_instance, "start_date", None)
    if start is None:
        return None
    end = getattr(task_instance, "end_date", None) or datetime.now(UTC)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds())


def record(task_instance: Any, state: str) -> None:
    """Count the task instance in ``state`` and push (what the hooks below call)."""
    try:
        from pipelines.config import get_settings
        from pipelines.monitoring import metrics

        dag_id, task_id = str(task_instance.dag_id), str(task_instance.task_id)
        metrics.record_task_instance(dag_id, task_id, state, _seconds(task_instance))
        metrics.push(
            get_settings().pushgateway_url,
            {"job_name": "airflow", "dag_id": dag_id, "task_id": task_id},
        )
    except Exception:  # never fail a task because of monitoring
        log.warning("mltrade listener could not record a task instance", exc_info=True)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    record(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    record(task_instance, "failed")
