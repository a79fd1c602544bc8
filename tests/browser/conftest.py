"""One ``airflow standalone`` for the session, as ``make airflow`` runs it, with history in it.

Metadata in a fresh PostgreSQL database on the warehouse's server (psycopg2 driver), simple
auth manager with a user and password (never all-admins), bound to 127.0.0.1 on a free port.
Before the tests it runs the demo's first step the way a user would from the UI (unpause
``market_data``, trigger it with the demo's ``start``/``end`` conf), on twelve symbols and the
sample's year, so the UI has a successful run, task logs and asset events. Every rebalance
waits for a person (``REBALANCE_APPROVAL=always``); MLflow is a store of this Airflow's own.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.warehouse import embedded
from scripts.airflow_env import psycopg2_url
from tests.support.airflow_processes import (
    BIN,
    PASSWORD,
    USER,
    RestApi,
    base_env,
    free_port,
    started,
    tail,
    task_logs,
    wait_for,
)
from tests.support.warehouse import drop_database

SYMBOLS = "AAPL,IBM,MSFT,XOM,JNJ,WMT,KO,PG,GE,T,PFE,MRK"
HISTORY_CONF = {"start": "2009-08-21", "end": "2010-08-20"}
_WAIT_S = 300


@dataclass
class AirflowUI:
    """The running standalone: its REST client, address, login and the history run's id."""

    api: RestApi
    base: str
    home: Path
    env: dict
    out: Path
    history_run_id: str
    user: str = USER
    password: str = PASSWORD


def _metadata_database() -> tuple[str, str]:
    name = f"airflow_ui_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [str(BIN / "mltrade"), "db", "url", "--database", name, "--show-password"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return name, psycopg2_url(done.stdout.strip())


def _run_to_success(api: RestApi, dag_id: str, conf: dict, home: Path, out: Path) -> str:
    api.ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = api.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
    deadline, state = time.monotonic() + _WAIT_S, "unknown"
    while state not in ("success", "failed"):
        if time.monotonic() > deadline:
            pytest.fail(f"{dag_id} still {state} after {_WAIT_S}s\n{task_logs(home)}\n{tail(out)}")
        time.sleep(2)
        with contextlib.suppress(OSError):  # a busy API server may miss one poll's timeout
            state = api.ok("GET", path)["state"]
    assert state == "success", f"{dag_id} {state}\n{task_logs(home)}\n{tail(out)}"
    return run["dag_run_id"]


@pytest.fixture(scope="package")  # stopped when tests/browser is done: its scheduler polls
def airflow_ui(
    warehouse_url: str, engine: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowUI]:
    """``engine`` first: it migrates the warehouse the tasks write to."""
    name, url = _metadata_database()
    root = tmp_path_factory.mktemp("airflow-ui")
    home = root / "airflow"
    port = free_port()
    env = {**base_env(home, port), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
           "UNIVERSE": SYMBOLS, "DATA_SOURCE": "sample", "REBALANCE_APPROVAL": "always",
           "MAX_WEIGHT": "0.15", "MAX_ORDER_NOTIONAL": "200000",
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    out = root / "standalone.out"
    try:
        with started([str(BIN / "airflow"), "standalone"], env, out) as proc:
            api = RestApi(port)
            wait_for("the API server", api.healthy, [(proc, out)], 900)
            for dag_id in ("market_data", "backtest", "premarket_rebalance"):
                wait_for(f"{dag_id} to be parsed", lambda d=dag_id: api.parsed(d),
                         [(proc, out)], 180)
            # As `make airflow` does: the rebalance's broker tasks run in this pool only.
            api.ok("POST", "/api/v2/pools", {"name": "broker", "slots": 1,
                                             "description": "one broker call at a time"})
            run_id = _run_to_success(api, "market_data", HISTORY_CONF, home, out)
            yield AirflowUI(api, f"http://localhost:{port}", home, env, out, run_id)
    finally:
        drop_database(embedded.admin_uri(warehouse_url), name)
