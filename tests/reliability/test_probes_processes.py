"""Killed and interrupted processes: a stage interrupted by SIGTERM/SIGINT is marked failed on
the way out; one killed by SIGKILL is marked failed by the next stage's stale-run sweep; the
embedded server's stop/start never signal or trust a process that is not its postmaster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from pipelines.runlog import stage_run, sweep_stale_runs
from pipelines.warehouse import embedded

ROOT = Path(__file__).resolve().parents[2]

_STAGE = textwrap.dedent(
    """
    import sys, time
    from pipelines import cli
    from pipelines.runlog import stage_run
    from pipelines.warehouse.engine import create_engine

    engine = create_engine(sys.argv[1])
    cli._install_signal_handlers()
    with stage_run(engine, "probe-signal", "ingest"):
        print("ready", flush=True)
        time.sleep(120)
    """
)


def _runs(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT status, error, pid FROM pipeline_runs ORDER BY id"))
        )


def _stage_in_a_child(warehouse_url: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _STAGE, warehouse_url],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    return child


@pytest.mark.slow  # a child Python process importing the pipeline (~3 s CPU)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_stage_is_marked_failed(warehouse, warehouse_url, signum) -> None:
    child = _stage_in_a_child(warehouse_url)
    child.send_signal(signum)
    child.communicate(timeout=60)
    assert child.returncode != 0
    [run] = _runs(warehouse)
    assert run.status == "failed" and run.error.startswith("interrupted")


@pytest.mark.slow  # a child Python process importing the pipeline (~3 s CPU)
def test_a_killed_stage_is_swept_by_the_next_stage(warehouse, warehouse_url) -> None:
    child = _stage_in_a_child(warehouse_url)
    child.kill()
    child.communicate(timeout=60)  # reaped: the pid names no process now
    assert [r.status for r in _runs(warehouse)] == ["running"]
    with stage_run(warehouse, "probe-next", "features"):
        pass
    killed, following = _runs(warehouse)
    assert killed.status == "failed" and "ended without finishing" in killed.error
    assert following.status == "success"


def test_a_reused_pid_is_stale_and_a_live_run_is_not(warehouse) -> None:
    me = psutil.Process(os.getpid())
    with warehouse.begin() as conn:
        for started in (me.create_time(), me.create_time() - 3600.0):  # ours; a reused pid
            conn.execute(
                sa.text(
                    "INSERT INTO pipeline_runs (run_id, stage, status, pid, host, "
                    "process_started) VALUES ('probe', 'ingest', 'running', :p, :h, :s)"
                ),
                {"p": os.getpid(), "h": socket.gethostname(), "s": started},
            )
    assert sweep_stale_runs(warehouse) == 1
    assert [r.status for r in _runs(warehouse)] == ["running", "failed"]


@pytest.fixture
def stranger() -> subprocess.Popen[bytes]:
    """A live process that is not PostgreSQL."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


def test_stop_never_signals_a_process_a_stale_pid_file_names(tmp_path, stranger) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{pgdata}\n")
    assert embedded.stop(pgdata) is False
    assert stranger.poll() is None  # still alive: never signalled
    assert not (pgdata / "postmaster.pid").exists()  # the stale file is gone


def test_db_stop_with_a_stale_pid_file_says_not_running(cli, monkeypatch, tmp_path, stranger):
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{pgdata}\n")
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    outcome = cli("db", "stop")
    assert outcome.code == 0 and "was not running" in outcome.out
    assert stranger.poll() is None


@pytest.mark.parametrize(
    "content", ["", "not-a-pid\n", "999999999\n"], ids=["empty", "word", "gone"]
)
def test_unreadable_or_dead_pid_files_are_stale(tmp_path, content) -> None:
    (tmp_path / "postmaster.pid").write_text(content)
    assert embedded.stop(tmp_path) is False
    assert not (tmp_path / "postmaster.pid").exists()


def test_the_session_server_is_recognised_as_our_postmaster(warehouse_url, stranger) -> None:
    if "host=" not in warehouse_url:
        pytest.skip("WAREHOUSE_URL points at an external server: no embedded postmaster here")
    pgdata = Path(os.environ["MLTRADE_HOME"]) / "postgres"
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    assert embedded.is_our_postmaster(pid, pgdata)
    assert not embedded.is_our_postmaster(stranger.pid, pgdata)
    assert not embedded.is_our_postmaster(pid, pgdata.parent)  # ours, but another directory


@pytest.mark.slow  # initdb and a first start of a fresh server (~10 s)
def test_a_stale_pid_file_does_not_block_startup(tmp_path, stranger) -> None:
    pgdata = tmp_path / "postgres"
    url = embedded.start(pgdata)  # initialise, then stop, then leave a stale file behind
    assert embedded.stop(pgdata)
    (pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{pgdata}\n")
    try:
        assert embedded.start(pgdata) == url
        with sa.create_engine(url).connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        embedded.stop(pgdata)
    assert stranger.poll() is None
