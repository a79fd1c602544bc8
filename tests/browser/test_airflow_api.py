"""The session's ``airflow standalone`` over HTTP: login required, graphs served, cockpit up.

No browser needed: these run wherever Airflow runs.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support.airflow_processes import RestApi

pytestmark = pytest.mark.slow

TRIGGER = "/api/v2/dags/promote/dagRuns"


def test_an_anonymous_trigger_is_refused_and_a_logged_in_one_works(airflow_ui) -> None:
    anonymous = RestApi(int(airflow_ui.base.rsplit(":", 1)[1]), anonymous=True)
    status, body = anonymous.call("POST", TRIGGER, {"logical_date": None})
    assert status in (401, 403), (status, body)
    status, _ = anonymous.call("PATCH", "/api/v2/dags/promote", {"is_paused": False})
    assert status in (401, 403)
    # No all-admins mode: the token endpoint wants credentials.
    status, _ = anonymous.call("GET", "/auth/token")
    assert status >= 400
    req = urllib.request.Request(
        f"{airflow_ui.base}/auth/token", method="POST",
        data=json.dumps({"username": airflow_ui.user, "password": "wrong"}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 401

    run = airflow_ui.api.ok("POST", TRIGGER, {"logical_date": None})  # promote stays paused
    assert run["dag_id"] == "promote" and run["state"] == "queued"
    airflow_ui.api.call("DELETE", f"{TRIGGER}/{run['dag_run_id']}")


def test_the_asset_and_dependency_views_answer_with_the_pipelines_assets(
    airflow_ui,
) -> None:
    api = airflow_ui.api
    graph = api.ok("GET", "/ui/dependencies")
    labels = {(n["type"], n["label"]) for n in graph["nodes"]}
    assert {("asset", "bars"), ("asset", "features"), ("asset", "model"), ("dag", "train"),
            ("dag", "features"), ("dag", "premarket_rebalance")} <= labels, labels
    assets = {a["name"]: a for a in api.ok("GET", "/api/v2/assets")["assets"]}
    assert {"bars", "features", "model", "orders"} <= set(assets)
    # features -> train: train's fit reads the features asset (an inlet), the data view says so.
    lineage = api.ok("GET", f"/ui/dependencies?dependency_type=data&node_id=asset:"
                            f"{assets['features']['id']}")
    names = json.dumps(lineage)
    assert "train" in names and "features" in names, names
    # bars -> features: the features DAG is scheduled on the bars asset.
    upstream = api.ok("GET", "/ui/dependencies?node_id=dag:features")
    assert any("bars" in json.dumps(n) for n in upstream["nodes"]), upstream
    assert api.ok("GET", "/ui/next_run_assets/features")


def test_the_history_run_has_task_logs_and_an_asset_event(airflow_ui) -> None:
    api, run_id = airflow_ui.api, airflow_ui.history_run_id
    tis = api.ok("GET", f"/api/v2/dags/market_data/dagRuns/{run_id}/taskInstances")
    assert {t["task_id"]: t["state"] for t in tis["task_instances"]}["ingest"] == "success"
    log = api.ok("GET", f"/api/v2/dags/market_data/dagRuns/{run_id}/taskInstances/ingest/logs/1")
    text = json.dumps(log)
    assert "ingest" in text
    assert "because it is a closure" not in text, "Great Expectations' noise is quiet"
    events = api.ok("GET", "/api/v2/assets/events?source_dag_id=market_data")
    assert events["total_entries"] >= 1


def test_the_cockpit_page_needs_a_login(airflow_ui) -> None:
    anonymous = RestApi(int(airflow_ui.base.rsplit(":", 1)[1]), anonymous=True)
    try:
        with urllib.request.urlopen(f"{airflow_ui.base}/mltrade/snapshot", timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as err:
        status = err.code
    assert status in (401, 403)
    req = urllib.request.Request(f"{airflow_ui.base}/mltrade/snapshot",
                                 headers={"Authorization": f"Bearer {airflow_ui.api.token()}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        snap = json.loads(r.read())
    assert set(snap) >= {"plan", "risk", "orders", "positions", "portfolio", "kill_switch",
                         "links"}
    assert snap["kill_switch"]["enabled"] is False
    assert anonymous.base == airflow_ui.base
