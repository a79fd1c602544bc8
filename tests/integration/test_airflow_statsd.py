"""Airflow's own metrics through statsd: a real ``dag.test()`` with Airflow's statsd client on.

The run sends its statsd lines over UDP to a socket here; the test checks what Airflow 3 sends
and what deploy/statsd-exporter/mapping.yml makes of it, then replays the very datagrams into a
real statsd_exporter (Debian's ``prometheus-statsd-exporter``, from
``scripts/install-test-services.sh``) started with the mapping, and reads its /metrics. The
exporter tests skip, naming the package, where it is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.statsd_mapping import Mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "deploy" / "statsd-exporter" / "mapping.yml"
DAGS = ROOT / "tests" / "support" / "statsd_dags"


@pytest.fixture(scope="module")
def exporter() -> str:
    for name in ("prometheus-statsd-exporter", "statsd_exporter"):
        if path := shutil.which(name):
            return path
    pytest.skip("statsd_exporter is not installed: run scripts/install-test-services.sh "
                "(Debian package prometheus-statsd-exporter; Debian 12 has none) or put the "
                "upstream statsd_exporter binary on PATH")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def datagrams(tmp_path_factory) -> list[bytes]:
    """The statsd datagrams of one real run of the probe DAG (ok succeeds, grp.boom fails)."""
    home = tmp_path_factory.mktemp("airflow-statsd")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.2)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(sink.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    log = (home / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.statsd_dag_run", str(DAGS)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    received: list[bytes] = []
    deadline = time.monotonic() + 300
    with sink:
        while time.monotonic() < deadline:
            try:
                received.append(sink.recv(65535))
            except TimeoutError:
                if proc.poll() is not None:
                    break  # exited and nothing more in flight
    out = proc.communicate(timeout=30)[0]
    assert "state=failed" in out, (home / "run.log").read_text()[-3000:]
    return received


def _lines(datagrams: list[bytes]) -> list[str]:
    return [line for d in datagrams for line in d.decode().splitlines() if line]


@pytest.mark.slow
def test_a_dag_run_sends_legacy_and_new_names_and_the_mapping_labels_them(datagrams) -> None:
    lines = _lines(datagrams)
    names = {line.split(":", 1)[0] for line in lines}
    # Both spellings of each metric arrive; the task group's "." became "__".
    assert {"airflow.ti.finish.statsd_probe.ok.success",
            "airflow.ti.finish.statsd_probe.grp__boom.failed", "airflow.ti.finish",
            "airflow.dag.statsd_probe.ok.duration", "airflow.task.duration",
            "airflow.dagrun.duration.failed.statsd_probe", "airflow.dagrun.duration.failed",
            "airflow.ti_failures", "airflow.ti_successes"} <= names, sorted(names)
    mapping = Mapping(MAPPING)
    mapped = {name: mapping.map(name) for name in names}
    assert mapped["airflow.ti.finish.statsd_probe.grp__boom.failed"].labels == {
        "dag_id": "statsd_probe", "task_id": "grp__boom", "state": "failed"}
    assert mapped["airflow.dagrun.duration.failed.statsd_probe"].name == (
        "airflow_dagrun_duration_seconds")
    assert mapped["airflow.ti.finish"].dropped and mapped["airflow.task.duration"].dropped
    # Nothing this run sends falls to an unlabelled default name that hides a variable.
    defaults = sorted(n for n, s in mapped.items() if s.rule is None)
    assert all("statsd_probe" not in n and "boom" not in n for n in defaults), defaults


@pytest.mark.slow
def test_statsd_exporter_serves_the_run_as_labelled_series(exporter, datagrams, tmp_path) -> None:
    udp, web = _free_port(socket.SOCK_DGRAM), _free_port()
    proc = subprocess.Popen(
        [exporter, f"--statsd.mapping-config={MAPPING}", f"--statsd.listen-udp=127.0.0.1:{udp}",
         "--statsd.listen-tcp=", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "exporter.log").open("w"),
    )
    url = f"http://127.0.0.1:{web}/metrics"
    try:
        _wait_for(lambda: urllib.request.urlopen(url, timeout=2).status == 200)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            for datagram in datagrams:  # the bytes Airflow sent, as it sent them
                out.sendto(datagram, ("127.0.0.1", udp))

        def scraped() -> dict:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            return {(s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(text) for s in family.samples}

        def finished(samples: dict) -> bool:
            return any(name == "airflow_dagrun_duration_seconds_count" for name, _ in samples)

        samples = _wait_for(lambda: (s := scraped()) and finished(s) and s)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    probe = (("dag_id", "statsd_probe"),)
    assert samples[("airflow_ti_finish_total",
                    probe + (("state", "failed"), ("task_id", "grp__boom")))] == 1
    assert samples[("airflow_ti_finish_total",
                    probe + (("state", "success"), ("task_id", "ok")))] == 1
    assert samples[("airflow_task_duration_seconds_count", probe + (("task_id", "ok"),))] == 1
    assert samples[("airflow_dagrun_duration_seconds_count",
                    probe + (("state", "failed"),))] == 1
    assert samples[("airflow_ti_failures_total", ())] == 1
    names = {name for name, _ in samples}
    assert "airflow_ti_finish" not in names and "airflow_task_duration" not in names
    assert not (tmp_path / "exporter.log").read_text().count("level=ERROR")


def test_statsd_exporter_accepts_the_mapping(exporter) -> None:
    done = subprocess.run([exporter, f"--statsd.mapping-config={MAPPING}", "--check-config"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def _wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            if last := predicate():
                return last
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting; last answer: {last!r}")
