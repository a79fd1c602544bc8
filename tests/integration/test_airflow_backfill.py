"""A backfill of ``market_data`` under a real ``airflow standalone`` loads what one CLI run loads.

Issues #3 and #7: Airflow runs as ``make airflow`` runs it (metadata in a PostgreSQL database on
the warehouse's server, LocalExecutor), in a throwaway AIRFLOW_HOME on free ports. The test
unpauses the DAG and creates a backfill through the REST API (``/api/v2``), waits for every
backfill run to succeed, fingerprints the bars, empties them, runs ``mltrade ingest`` once over
the same sessions and checks the rows are the same.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
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

_SYMBOLS = "AAPL,IBM,MSFT"
# Logical dates (data interval starts, 16:30 New York = 21:30 UTC before DST) Fri 2010-03-05
# to Tue 2010-03-09: three concurrent intervals whose closes are the sessions Mon 2010-03-08 ..
# Wed 03-10 (three, not more: each run's tasks are processes of their own on two cores).
_FROM, _TO = "2010-03-05T00:00:00Z", "2010-03-10T00:00:00Z"
_FIRST_SESSION, _LAST_SESSION = "2010-03-08", "2010-03-10"
_RUNS = 3
_WAIT_S = 360


@pytest.fixture
def airflow(
    tmp_path: Path, warehouse: sa.Engine, airflow_metadata_url: str
) -> Iterator[tuple[RestApi, dict, Path, subprocess.Popen]]:
    """``airflow standalone`` on free ports in a throwaway home; the whole group ends after."""
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    env = {
        **base_env(home, port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_metadata_url,
        "UNIVERSE": _SYMBOLS,
        "DATA_SOURCE": "sample",
    }
    out = tmp_path / "standalone.out"
    with started([str(BIN / "airflow"), "standalone"], env, out) as proc:
        yield RestApi(port), env, out, proc


def _bars_fingerprint(engine: sa.Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT symbol, ts, open, high, low, close, volume FROM bars ORDER BY symbol, ts"
        )).all()
    return len(rows), hashlib.md5(repr([tuple(r) for r in rows]).encode()).hexdigest()


@pytest.mark.slow
def test_rest_backfill_loads_the_rows_one_cli_run_loads(
    airflow: tuple[RestApi, dict, Path, subprocess.Popen], warehouse: sa.Engine
) -> None:
    api, env, out, proc = airflow
    proc_home = Path(env["AIRFLOW_HOME"])
    wait_for("the API server", api.healthy, [(proc, out)], 600)  # a guard, not a speed check
    wait_for("market_data to be parsed", lambda: api.parsed("market_data"), [(proc, out)], 300)
    assert api.ok("PATCH", "/api/v2/dags/market_data", {"is_paused": False})["is_paused"] is False

    body = {"dag_id": "market_data", "from_date": _FROM, "to_date": _TO, "max_active_runs": _RUNS}
    dry = api.ok("POST", "/api/v2/backfills/dry_run", body)
    assert dry["total_entries"] == _RUNS, dry
    backfill = api.ok("POST", "/api/v2/backfills", body)

    deadline = time.monotonic() + _WAIT_S
    while True:
        runs = api.ok("GET", "/api/v2/dags/market_data/dagRuns?limit=100")["dag_runs"]
        mine = [r for r in runs if r["run_type"] == "backfill"]
        failed = [r["dag_run_id"] for r in mine if r["state"] == "failed"]
        if failed:
            pytest.fail(f"backfill runs failed: {failed}\n{task_logs(proc_home)}\n{tail(out)}")
        if len(mine) == _RUNS and all(r["state"] == "success" for r in mine):
            break
        if time.monotonic() > deadline:
            states = {r["dag_run_id"]: r["state"] for r in mine}
            pytest.fail(f"backfill {backfill['id']} not done after {_WAIT_S}s: {states}\n"
                        f"{task_logs(proc_home)}\n{tail(out)}")
        time.sleep(2)
    assert sorted(r["data_interval_start"][:10] for r in mine) == [
        "2010-03-05", "2010-03-08", "2010-03-09"]

    # First attempts only: a retry would hide a task that fails under concurrent runs.
    for run in mine:
        tis = api.ok("GET", f"/api/v2/dags/market_data/dagRuns/{run['dag_run_id']}/taskInstances")
        tries = {ti["task_id"]: ti["try_number"] for ti in tis["task_instances"]}
        assert tries == {"ingest": 1, "universe": 1, "retention": 1}, (run["dag_run_id"], tries)

    n_backfill, md5_backfill = _bars_fingerprint(warehouse)
    assert n_backfill == _RUNS * 3  # a session of three symbols per run

    with warehouse.begin() as conn:
        conn.execute(sa.text("TRUNCATE bars CASCADE"))
    assert _bars_fingerprint(warehouse)[0] == 0
    cli = subprocess.run(
        [str(BIN / "mltrade"), "ingest", "--start", _FIRST_SESSION, "--end", _LAST_SESSION,
         "--symbols", _SYMBOLS],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert _bars_fingerprint(warehouse) == (n_backfill, md5_backfill)
