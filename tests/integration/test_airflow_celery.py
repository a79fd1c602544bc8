"""The demo's DAG runs on Airflow's CeleryExecutor, two workers, leave what the one-process demo
leaves.

Issue #7 (distributed run): the reference is ``scripts/demo.py`` itself (every DAG through
``dag.test()`` in one process). Then, on the emptied warehouse, a real Airflow deployment runs
the same DAG runs: api-server, scheduler and dag-processor on a throwaway PostgreSQL metadata
database, two ``airflow celery worker`` processes on the machine's Redis, each run triggered
through the REST API (``/api/v2``) as a user does from the UI. Every table's rows must come out
the same, less what records when and under which run a row was written, floats to 1e-9.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.support.airflow_processes import (
    BIN,
    RestApi,
    base_env,
    free_port,
    started,
    tail,
    task_logs,
    wait_for,
)
from tests.support.demo import DEMO, load_demo
from tests.support.warehouse import DATA_TABLES, empty_data_tables

pytestmark = [pytest.mark.slow, pytest.mark.extended]

REDIS_URL = "redis://127.0.0.1:6379/0"
WORKERS = ("worker1", "worker2")
_RUN_TIMEOUT_S = 300
# Columns that say when, or under which Airflow/MLflow run, a row was written: they differ
# between any two runs of the same pipeline. Every other column is compared.
_PROVENANCE = {"run_id", "mlflow_run_id", "ingested_at", "quarantined_at", "validated_at",
               "created_at", "updated_at", "at", "started_at", "finished_at", "submitted_at",
               "failed_at", "retried_at", "timings", "orders_frozen_at", "listed_at",
               "retrieved_at", "recorded_at", "bars_version",
               # how many orders a reconciliation compared: those listed since the last clean
               # listing less the broker's overlap (seconds), so it depends on the runs' pace
               "orders_checked"}
# An Airflow run id quoted inside a value (a JSON summary, a gate's reason) is provenance too.
_RUN_ID = re.compile(r"(?:manual|scheduled|backfill|asset_triggered)__[\w:.+-]+")
_RUN_LOGS = {"pipeline_runs"}  # one row per stage execution: grows on every run by design
# The optimizer's weights (and the VaR and stress losses computed from them) are defined to the
# solver's tolerance: a problem compiled afresh in each Celery task and the demo's compiled
# problem, reused across sessions in one process, agree to ~1e-15 here, not bit for bit.
_REL_TOL, _ABS_TOL = 1e-9, 1e-9


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL} for the Celery broker ({exc}); start it with "
                    "redis-server --port 6379")


Row = tuple[str, tuple[float, ...]]  # (the row with its floats marked, the floats)


def _split(value: object, homes: tuple[str, ...], floats: list[float]) -> object:
    """``value`` with each float moved to ``floats``, and each deployment home path and Airflow
    run id masked."""
    if isinstance(value, float):
        floats.append(value)
        return "<float>"
    if isinstance(value, str):
        for home in homes:
            value = value.replace(home, "<MLTRADE_HOME>")
        return _RUN_ID.sub("<run_id>", value)
    if isinstance(value, dict):
        return {k: _split(v, homes, floats) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_split(v, homes, floats) for v in value]
    return value  # int, Decimal, date, datetime, bool, None: compared exactly


def _table_rows(engine: sa.Engine, homes: tuple[str, ...]) -> dict[str, list[Row]]:
    """Per data table, its rows (provenance columns left out), sorted."""
    with engine.connect() as conn:
        columns: dict[str, list[str]] = {}
        for table, column in conn.execute(sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")):
            columns.setdefault(table, []).append(column)
        rows: dict[str, list[Row]] = {}
        for table in DATA_TABLES:
            if table in _RUN_LOGS:
                continue
            kept = ", ".join(f'"{c}"' for c in columns[table] if c not in _PROVENANCE)
            rows[table] = []
            for row in conn.execute(sa.text(f"SELECT {kept} FROM {table}")):
                floats: list[float] = []
                shape = repr(_split(tuple(row), homes, floats))
                rows[table].append((shape, tuple(floats)))
            rows[table].sort()
        return rows


def _same(a: Row, b: Row) -> bool:
    return a[0] == b[0] and len(a[1]) == len(b[1]) and all(
        x == y or math.isclose(x, y, rel_tol=_REL_TOL, abs_tol=_ABS_TOL) or (x != x and y != y)
        for x, y in zip(a[1], b[1], strict=True))


def _differences(expected: dict[str, list[Row]], actual: dict[str, list[Row]]) -> list[str]:
    """The tables whose rows differ, each with its first differing row on both sides."""
    lines = []
    for table, rows in expected.items():
        other = actual[table]
        if len(rows) != len(other):
            lines.append(f"{table}: {len(rows)} rows in one process, {len(other)} on Celery")
            continue
        for a, b in zip(rows, other, strict=True):
            if not _same(a, b):
                at = next((i for i, (x, y) in enumerate(zip(a[0], b[0], strict=False))
                           if x != y), 0)
                lines += [f"{table}: rows differ (at character {at} of the row, or its floats)",
                          f"  one process: …{a[0][max(at - 150, 0):at + 150]} {a[1][:8]}",
                          f"  Celery:      …{b[0][max(at - 150, 0):at + 150]} {b[1][:8]}"]
                break
    return lines


@dataclass
class Cluster:
    api: RestApi
    home: Path  # AIRFLOW_HOME
    mltrade_home: Path
    procs: list[tuple[subprocess.Popen, Path]]
    worker_logs: dict[str, Path]


@pytest.fixture
def celery_airflow(tmp_path: Path, airflow_metadata_url: str) -> Iterator[Cluster]:
    """Airflow on the CeleryExecutor: api-server, scheduler, dag-processor and two workers."""
    _redis_or_skip()
    home, mltrade_home = tmp_path / "airflow", tmp_path / "mltrade"
    home.mkdir()
    port = free_port()
    env = {
        **base_env(home, port),
        "MLTRADE_HOME": str(mltrade_home),  # its own MLflow store and GX project
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_metadata_url}",
        # A queue of this test's own: no other Celery worker on this Redis takes its tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"mltrade-test-{uuid.uuid4().hex[:8]}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        # Only the runs the test triggers: no cron runs for "now" (2026) on 2010 data.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    airflow = str(BIN / "airflow")
    for args in (["db", "migrate"],
                 ["pools", "set", "broker", "1", "premarket_rebalance: one broker call at a time"]):
        done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    commands = {
        "api-server": ["api-server", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
    }
    for name in WORKERS:
        commands[name] = ["celery", "worker", "--celery-hostname", f"{name}@%h",
                          "--queues", env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                          "--pid", str(tmp_path / f"{name}.pid"), "--skip-serve-logs"]
    with contextlib.ExitStack() as stack:
        procs = []
        for name, args in commands.items():
            out = tmp_path / f"{name}.out"
            procs.append((stack.enter_context(started([airflow, *args], env, out)), out))
        yield Cluster(RestApi(port), home, mltrade_home, procs,
                      {name: tmp_path / f"{name}.out" for name in WORKERS})


def _run_to_success(cluster: Cluster, dag_id: str, conf: dict) -> str:
    """Trigger one run through the REST API and wait until it has succeeded; its run id."""
    api = cluster.api
    api.ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = api.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
    started_at = time.monotonic()
    deadline = started_at + _RUN_TIMEOUT_S
    while (state := api.ok("GET", path)["state"]) not in {"success", "failed"}:
        if time.monotonic() > deadline:
            pytest.fail(f"{dag_id} {conf} still {state} after {_RUN_TIMEOUT_S}s\n"
                        f"{task_logs(cluster.home)}")
        time.sleep(1)
    if state != "success":
        pytest.fail(f"{dag_id} {conf} failed\n{task_logs(cluster.home)}")
    print(f"{dag_id} {conf}: {time.monotonic() - started_at:.1f} s on Celery")
    return run["dag_run_id"]


def test_celery_workers_leave_the_warehouse_as_one_process_does(
    warehouse: sa.Engine, celery_airflow: Cluster, tmp_path: Path
) -> None:
    demo = load_demo()
    reference_home = tmp_path / "reference"
    reference = subprocess.run(
        [str(BIN / "python"), str(DEMO)],
        env={**base_env(reference_home / "airflow", free_port()),
             "MLTRADE_HOME": str(reference_home)},
        capture_output=True, text=True, timeout=600,
    )
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]
    homes = (str(reference_home), str(celery_airflow.mltrade_home))
    one_process = _table_rows(warehouse, homes)
    assert one_process["orders"] and len(one_process["fills"]) == len(one_process["orders"])

    empty_data_tables(warehouse)
    cluster = celery_airflow
    wait_for("the API server", cluster.api.healthy, cluster.procs, 600)
    for dag_id in {step.dag_id for step in demo.STEPS}:
        wait_for(f"{dag_id} to be parsed", lambda d=dag_id: cluster.api.parsed(d),
                 cluster.procs, 180)
    for name, log in cluster.worker_logs.items():
        wait_for(f"Celery {name} to be ready", lambda p=log: " ready." in p.read_text(),
                 cluster.procs, 300)

    runs = [(step.dag_id, _run_to_success(cluster, step.dag_id, step.conf))
            for step in demo.STEPS]

    # First attempts only: a retry would hide a task that fails when run on another worker.
    # A task skipped by its branch never ran (try number 0): it has no attempt to count.
    for dag_id, run_id in runs:
        tis = cluster.api.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        retried = {ti["task_id"]: ti["try_number"] for ti in tis["task_instances"]
                   if ti["state"] != "skipped" and ti["try_number"] != 1}
        assert not retried, (dag_id, run_id, retried)
    # Both workers took tasks (market_data's universe and retention run side by side).
    received = {name: len(re.findall(r"execute_workload\[[0-9a-f-]+\] received", log.read_text()))
                for name, log in cluster.worker_logs.items()}
    print(f"tasks received per worker: {received}")
    assert all(received.values()), (received, {n: tail(p) for n, p in cluster.worker_logs.items()})

    differences = _differences(one_process, _table_rows(warehouse, homes))
    assert not differences, "\n".join(differences)
