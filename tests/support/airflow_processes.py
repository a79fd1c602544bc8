"""Real Airflow processes for integration tests: start them, talk to their REST API, stop them.

Each process runs in its own process group so that everything it forks (task runners, Celery
pool processes, gunicorn/uvicorn workers) ends with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: Airflow launches `airflow` by name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The simple auth manager's user in the tests (``make airflow`` generates its password once).
USER, PASSWORD = "admin", "mltrade-test-password"


def base_env(home: Path, port: int) -> dict[str, str]:
    """The environment of an Airflow whose home, DAGs, API port and ports are this test's own.

    Authentication is on, as in ``make airflow``: user ``admin`` with the password in
    ``home``'s passwords file (written here; ``RestApi`` logs in with it).
    """
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    return {
        **os.environ,  # WAREHOUSE_URL (the session's database) and MLTRADE_HOME from conftest
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # 8793/8794 may be taken by another Airflow on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    }


class RestApi:
    """A tiny client of Airflow's public REST API, logged in as the test user (a JWT from
    ``/auth/token``, fetched on first use); ``anonymous=True`` sends no credentials."""

    def __init__(self, port: int, *, anonymous: bool = False) -> None:
        self.base = f"http://localhost:{port}"
        self.anonymous = anonymous
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            req = urllib.request.Request(
                f"{self.base}/auth/token", method="POST",
                data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                self._token = json.loads(resp.read())["access_token"]
        return self._token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if not self.anonymous and path.startswith(("/api/", "/ui/")):
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                     headers=headers)
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

    def healthy(self) -> bool:
        status, payload = self.call("GET", "/api/v2/monitor/health")
        return status == 200 and isinstance(payload, dict)

    def parsed(self, dag_id: str) -> bool:
        return self.call("GET", f"/api/v2/dags/{dag_id}")[0] == 200


def wait_for(what: str, probe: Callable[[], object], procs: Iterable[tuple[subprocess.Popen, Path]],
             timeout_s: float, poll_s: float = 1.0):
    """``probe()``'s first truthy result; fails naming ``what`` (with the processes' output)
    when the time is up or one of the processes has exited."""
    procs = list(procs)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc, out in procs:
            if proc.poll() is not None:
                pytest.fail(f"{' '.join(proc.args)} exited ({proc.returncode}):\n{tail(out)}")
        with contextlib.suppress(OSError):
            result = probe()
            if result:
                return result
        time.sleep(poll_s)
    outputs = "\n".join(f"--- {out.name}\n{tail(out, 30)}" for _, out in procs)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{outputs}")


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def task_logs(home: Path, files: int = 6) -> str:
    """The end of the newest task logs under an Airflow home, for a failure message."""
    logs = sorted((home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime) \
        if (home / "logs").exists() else []
    return "\n".join(f"--- {p.relative_to(home)}\n{tail(p, 40)}" for p in logs[-files:])


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], out: Path) -> Iterator[subprocess.Popen]:
    """A process (its output in ``out``) that ends, with its whole group, when the block does."""
    with out.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, cwd=out.parent, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever outlived it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
