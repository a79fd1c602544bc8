"""The mltrade Airflow plugin: the task-metrics listener, the cockpit page and links to MLflow
and Grafana.

- The cockpit (:mod:`mltrade_cockpit`): a FastAPI app on Airflow's API server under
  ``/mltrade/``, shown inside the UI as the navigation entry "mltrade cockpit" (an external view
  with a ``url_route``: Airflow frames it at ``/plugin/mltrade-cockpit``).
- ``external_views`` with ``destination="nav"`` and no ``url_route`` are entries of the Browse
  menu that open the tool itself (Grafana and MLflow refuse to be framed by default). The URLs
  come from ``MLFLOW_UI_URL`` (default: ``MLFLOW_TRACKING_URI`` when it is an http(s) server)
  and ``GRAFANA_URL``; a link without a URL is left out.
"""

from __future__ import annotations

import mltrade_listener
from airflow.plugins_manager import AirflowPlugin

COCKPIT_PREFIX = "/mltrade"


def _links() -> list[dict]:
    from pipelines.cockpit import links
    from pipelines.config import get_settings

    try:
        urls = links(get_settings())
    except Exception:  # a bad setting is reported by the tasks themselves, not by the UI
        return []
    views = []
    if urls["mlflow"]:
        views.append({"name": "MLflow", "href": urls["mlflow"], "destination": "nav",
                      "category": "browse"})
    if urls["grafana"]:
        views.append({"name": "Grafana", "href": urls["grafana"], "destination": "nav",
                      "category": "browse"})
    return views


def _cockpit() -> list[dict]:
    from mltrade_cockpit import app

    return [{"app": app, "url_prefix": COCKPIT_PREFIX, "name": "mltrade cockpit"}]


COCKPIT_VIEW = {
    "name": "mltrade cockpit",
    "href": f"{COCKPIT_PREFIX}/",
    "url_route": "mltrade-cockpit",
    "destination": "nav",
}


class MltradePlugin(AirflowPlugin):
    name = "mltrade"
    listeners = [mltrade_listener]
    fastapi_apps = _cockpit()
    external_views = [COCKPIT_VIEW, *_links()]
