"""A backfill of ``market_data`` under a real ``airflow standalone`` loads what one CLI run loads.

Issues #3 and #7: Airflow (SQLite metadata, LocalExecutor) runs in a throwaway AIRFLOW_HOME on
free ports; the test unpauses the DAG and creates a backfill through the REST API
(``/api/v2``), waits for every backfill run to succeed, fingerprints the bars, empties them, runs
``mltrade ingest`` once over the same sessions and checks the rows are the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_REPO = Path(__file__).resolve().parents[2]
_BIN = Path(sys.executable).parent  # the venv's bin: standalone launches `airflow` by name
_SYMBOLS = "AAPL,IBM,MSFT"
# Logical dates (data interval starts, 16:30 New York = 21:30 UTC before DST) Fri 2010-03-05
# to Thu 2010-03-11: five intervals whose closes are the sessions Mon 2010-03-08 .. Fri 03-12.
_FROM, _TO = "2010-03-05T00:00:00Z", "2010-03-12T00:00:00Z"
_FIRST_SESSION, _LAST_SESSION = "2010-03-08", "2010-03-12"
_WAIT_S = 360


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Api:
    """A tiny client of Airflow's public REST API (the all-admins middleware authenticates)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://localhost:{port}"

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        status, payload = self.call(method, path, body)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {payload}"
        assert isinstance(payload, dict)
        return payload


def _wait_for(what: str, probe, proc: subprocess.Popen, out: Path, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited ({proc.returncode}):\n{_tail(out)}")
        with contextlib.suppress(OSError):
            result = probe()
            if result:
                return result
        time.sleep(1)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{_tail(out)}")


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _task_logs(home: Path) -> str:
    logs = sorted((home / "logs").rglob("*.log")) if (home / "logs").exists() else []
    return "\n".join(f"--- {p.relative_to(home)}\n{_tail(p, 40)}" for p in logs[-6:])


@pytest.fixture
def airflow(
    tmp_path: Path, warehouse: sa.Engine
) -> Iterator[tuple[_Api, dict, Path, subprocess.Popen]]:
    """``airflow standalone`` on free ports in a throwaway home; the whole group ends after."""
    home = tmp_path / "airflow"
    home.mkdir()
    port = _free_port()
    env = {
        **os.environ,  # WAREHOUSE_URL (the session's database) and MLTRADE_HOME from conftest
        "PATH": f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(_REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # 8793/8794 may be taken by another Airflow on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "UNIVERSE": _SYMBOLS,
        "DATA_SOURCE": "sample",
    }
    out = tmp_path / "standalone.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([str(_BIN / "airflow"), "standalone"], env=env, cwd=tmp_path,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield _Api(port), env, out, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the parent
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _bars_fingerprint(engine: sa.Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT symbol, ts, open, high, low, close, volume FROM bars ORDER BY symbol, ts"
        )).all()
    return len(rows), hashlib.md5(repr([tuple(r) for r in rows]).encode()).hexdigest()


@pytest.mark.slow
def test_rest_backfill_loads_the_rows_one_cli_run_loads(
    airflow: tuple[_Api, dict, Path, subprocess.Popen], warehouse: sa.Engine
) -> None:
    api, env, out, proc = airflow
    proc_home = Path(env["AIRFLOW_HOME"])

    def healthy() -> bool:
        status, payload = api.call("GET", "/api/v2/monitor/health")
        return status == 200 and isinstance(payload, dict)

    def parsed() -> bool:
        return api.call("GET", "/api/v2/dags/market_data")[0] == 200

    _wait_for("the API server", healthy, proc, out, 120)
    _wait_for("market_data to be parsed", parsed, proc, out, 120)
    assert api.ok("PATCH", "/api/v2/dags/market_data", {"is_paused": False})["is_paused"] is False

    body = {"dag_id": "market_data", "from_date": _FROM, "to_date": _TO, "max_active_runs": 5}
    dry = api.ok("POST", "/api/v2/backfills/dry_run", body)
    assert dry["total_entries"] == 5, dry
    backfill = api.ok("POST", "/api/v2/backfills", body)

    deadline = time.monotonic() + _WAIT_S
    while True:
        runs = api.ok("GET", "/api/v2/dags/market_data/dagRuns?limit=100")["dag_runs"]
        mine = [r for r in runs if r["run_type"] == "backfill"]
        failed = [r["dag_run_id"] for r in mine if r["state"] == "failed"]
        if failed:
            pytest.fail(f"backfill runs failed: {failed}\n{_task_logs(proc_home)}\n{_tail(out)}")
        if len(mine) == 5 and all(r["state"] == "success" for r in mine):
            break
        if time.monotonic() > deadline:
            states = {r["dag_run_id"]: r["state"] for r in mine}
            pytest.fail(f"backfill {backfill['id']} not done after {_WAIT_S}s: {states}\n"
                        f"{_task_logs(proc_home)}\n{_tail(out)}")
        time.sleep(2)
    assert sorted(r["data_interval_start"][:10] for r in mine) == [
        "2010-03-05", "2010-03-08", "2010-03-09", "2010-03-10", "2010-03-11"]

    # First attempts only: a retry would hide a task that fails under concurrent runs.
    for run in mine:
        tis = api.ok("GET", f"/api/v2/dags/market_data/dagRuns/{run['dag_run_id']}/taskInstances")
        tries = {ti["task_id"]: ti["try_number"] for ti in tis["task_instances"]}
        assert tries == {"ingest": 1, "universe": 1, "retention": 1}, (run["dag_run_id"], tries)

    n_backfill, md5_backfill = _bars_fingerprint(warehouse)
    assert n_backfill == 5 * 3  # five sessions of three symbols

    with warehouse.begin() as conn:
        conn.execute(sa.text("TRUNCATE bars CASCADE"))
    assert _bars_fingerprint(warehouse)[0] == 0
    cli = subprocess.run(
        [str(_BIN / "mltrade"), "ingest", "--start", _FIRST_SESSION, "--end", _LAST_SESSION,
         "--symbols", _SYMBOLS],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert _bars_fingerprint(warehouse) == (n_backfill, md5_backfill)
