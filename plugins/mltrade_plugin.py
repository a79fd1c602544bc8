"""The mltrade Airflow plugin: the task-metrics listener and links to MLflow and Grafana.

Airflow 3 shows ``external_views`` with ``destination="nav"`` as entries of the navigation
bar (Browse menu); without a ``url_route`` they open the tool itself rather than an iframe
(Grafana and MLflow refuse to be framed by default). The URLs come from ``MLFLOW_UI_URL``
(default: ``MLFLOW_TRACKING_URI`` when it is an http(s) server) and ``GRAFANA_URL``; a link
without a URL is left out.
"""

from __future__ import annotations

import mltrade_listener
from airflow.plugins_manager import AirflowPlugin


def _links() -> list[dict]:
    from pipelines.config import get_settings

    try:
        settings = get_settings()
    except Exception:  # a bad setting is reported by the tasks themselves, not by the UI
        return []
    mlflow = settings.mlflow_ui_url or (
        settings.mlflow_tracking_uri
        if settings.mlflow_tracking_uri.startswith(("http://", "https://"))
        else ""
    )
    views = []
    if mlflow:
        views.append({"name": "MLflow", "href": mlflow, "destination": "nav",
                      "category": "browse"})
    if settings.grafana_url:
        views.append({"name": "Grafana", "href": settings.grafana_url.rstrip("/")
                      + "/dashboards/f/mltrade", "destination": "nav", "category": "browse"})
    return views


class MltradePlugin(AirflowPlugin):
    name = "mltrade"
    listeners = [mltrade_listener]
    external_views = _links()
