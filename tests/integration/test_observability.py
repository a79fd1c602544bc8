"""Observability against real parts: the logs of real stages, a real Prometheus and Pushgateway.

Prometheus and the Pushgateway are Debian's packages (``scripts/install-test-services.sh``,
run by ``make test``); the tests that need them skip, saying so, when the binaries are absent.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipelines import jobs
from pipelines.monitoring import metrics
from pipelines.monitoring.logging import configure_logging, reset_logging
from pipelines.runlog import stage_run

ROOT = Path(__file__).resolve().parents[2]
START, END = date(2010, 3, 1), date(2010, 3, 31)
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM"]
FAKE_KEY = "AKTESTFAKEKEY12345678"
FAKE_SECRET = "fake-secret/value+0987654321"
PUSH_PASSWORD = "push-fake-Passw0rd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_logs_of_real_stages_carry_the_run_and_no_secret(
    warehouse: sa.Engine, monkeypatch, tmp_path, caplog
) -> None:
    """Ingest and features on the sample with fake secrets configured; scan every log line.

    The secrets are given real ways to leak: a Pushgateway URL with a password that cannot be
    reached (the push failure is logged with the URL), a stage failing with the key in its
    error, and a library logger writing the secret.
    """
    closed = _free_port()
    monkeypatch.setenv("ALPACA_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", FAKE_SECRET)
    monkeypatch.setenv("PUSHGATEWAY_URL", f"http://mltrade:{PUSH_PASSWORD}@127.0.0.1:{closed}")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "logs" / "mltrade.log"))
    from pipelines.config import get_settings

    get_settings.cache_clear()
    out = io.StringIO()
    caplog.set_level(logging.INFO)
    try:
        configure_logging(stream=out)
        loaded = jobs.ingest_bars(START, END, "run-logs", SYMBOLS)
        jobs.build_features(START, END, "run-logs")
        logging.getLogger("urllib3.connectionpool").warning(
            "retrying with key=%s secret=%s", FAKE_KEY, FAKE_SECRET
        )
        with pytest.raises(RuntimeError), stage_run(
            warehouse, "run-logs", "leaky", session_date=END
        ):
            raise RuntimeError(f"broker refused key {FAKE_KEY}")
    finally:
        reset_logging()
        get_settings.cache_clear()

    # The real CLI entry in its own process, configured from the environment alone.
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("mltrade")), "features",
         "--start", str(START), "--end", str(END)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "ALPACA_API_KEY": FAKE_KEY, "ALPACA_SECRET_KEY": FAKE_SECRET,
             "LOG_FORMAT": "json", "LOG_FILE": "",
             "PUSHGATEWAY_URL": f"http://mltrade:{PUSH_PASSWORD}@127.0.0.1:{closed}"},
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    cli_lines = [json.loads(line) for line in cli.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("stage") == "features" and line["event"] == "stage succeeded"
               and line["run_id"].startswith("cli__features__") for line in cli_lines)

    assert loaded["rows_loaded"] > 0
    file_text = (tmp_path / "logs" / "mltrade.log").read_text()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    stages = {(line.get("stage"), line["event"]) for line in lines if line.get("run_id")}
    assert {("ingest", "stage succeeded"), ("features", "stage succeeded"),
            ("leaky", "stage failed")} <= stages
    assert all(line["run_id"] == "run-logs" for line in lines if "stage" in line)
    assert any(line.get("session_date") == str(END) for line in lines)
    assert any(f"mltrade:***@127.0.0.1:{closed}" in json.dumps(line) for line in lines), (
        "the push failure (our leak path) was not logged"
    )
    captured = out.getvalue() + file_text + caplog.text + cli.stdout + cli.stderr
    for secret in (FAKE_KEY, FAKE_SECRET, PUSH_PASSWORD):
        assert secret not in captured, f"a configured secret reached the logs: {secret[:4]}…"


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed: run scripts/install-test-services.sh "
                    "(Debian packages prometheus, prometheus-pushgateway)")
    return path


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait(predicate, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}; last answer: {last!r}")


def _query(prom: str, expr: str) -> list[dict]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = _get_json(url)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def pushgateway(tmp_path):
    binary = _need("prometheus-pushgateway")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "pushgateway.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
              "the Pushgateway to start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_prometheus_scrapes_our_endpoint_and_the_pushgateway(
    warehouse: sa.Engine, monkeypatch, tmp_path, pushgateway: str
) -> None:
    prometheus = _need("prometheus")
    monkeypatch.setenv("PUSHGATEWAY_URL", pushgateway)
    from pipelines.config import get_settings

    get_settings.cache_clear()
    before = metrics.ROWS_INGESTED.labels("sample")._value.get()
    loaded = jobs.ingest_bars(START, END, "run-prom", SYMBOLS)["rows_loaded"]
    assert loaded > 0
    # Champion forecasts for 30 and 31 March: the 30th's are realized at the 31st's close.
    with warehouse.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO predictions VALUES ('probe', '3', :d, :s, :r, 'fs', 'run-prom')"),
            [{"d": day, "s": s, "r": 0.001 * i} for day in (date(2010, 3, 30), END)
             for i, s in enumerate(SYMBOLS)],
        )

    server = metrics.serve(0, engine=warehouse, portfolio=lambda: {"equity": 1234.5, "pnl": -5})
    cli_port = _free_port()  # `mltrade metrics serve`, a second target: the real command
    cli = subprocess.Popen(
        [str(Path(sys.executable).with_name("mltrade")), "metrics", "serve",
         "--port", str(cli_port), "--as-of", "2010-03-31"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "cli.log").open("w"),
        env={**os.environ, "PUSHGATEWAY_URL": ""},
    )
    prom_port = _free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "mltrade", "static_configs": [
                {"targets": [f"127.0.0.1:{server.port}"]}]},
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [
                {"targets": [pushgateway.removeprefix("http://")]}]},
            {"job_name": "mltrade-cli", "static_configs": [
                {"targets": [f"127.0.0.1:{cli_port}"]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )
    prom = f"http://127.0.0.1:{prom_port}"
    try:
        ours = f'job="mltrade",instance="127.0.0.1:{server.port}",source="sample"'
        pulled = _wait(lambda: _query(prom, f"mltrade_rows_ingested_total{{{ours}}}"),
                       "the scraped series")
        assert [float(s["value"][1]) for s in pulled] == [before + loaded], pulled

        pushed = _wait(lambda: _query(
            prom, 'mltrade_stage_runs_total{job="mltrade-batch",job_name="ingest",'
                  'status="success"}'), "the pushed series")
        assert float(pushed[0]["value"][1]) >= 1
        assert "instance" not in pushed[0]["metric"]  # it came through the Pushgateway

        fresh = _query(prom, 'mltrade_data_latest_session_timestamp_seconds{job="mltrade"}')
        assert float(fresh[0]["value"][1]) == metrics._session_close_ts(date(2010, 3, 31))
        # Both targets export these: name the in-process one.
        switch = _query(prom, 'mltrade_kill_switch_engaged{job="mltrade"}')
        assert float(switch[0]["value"][1]) == 0
        equity = _query(prom, 'mltrade_portfolio_equity_usd{job="mltrade"}')
        assert float(equity[0]["value"][1]) == 1234.5
        ratio = _query(prom, 'mltrade_validation_pass_ratio{job="mltrade",source="sample"}')
        assert 0.9 < float(ratio[0]["value"][1]) <= 1.0

        # Predicted vs realized: the newest date whose next session's close is in the bars.
        ic = _query(prom, 'mltrade_prediction_rank_ic{job="mltrade",model="probe",version="3"}')
        assert -1.0 <= float(ic[0]["value"][1]) <= 1.0
        scored = _query(prom, 'mltrade_prediction_scored_session_timestamp_seconds'
                              '{job="mltrade",model="probe"}')
        assert float(scored[0]["value"][1]) == metrics._session_close_ts(date(2010, 3, 30))
        symbols = _query(prom, 'mltrade_prediction_scored_symbols{job="mltrade",model="probe"}')
        assert float(symbols[0]["value"][1]) == len(SYMBOLS)
        assert _query(prom, 'mltrade_prediction_mae{job="mltrade",model="probe"}')
        assert _query(prom, 'mltrade_prediction_hit_ratio{job="mltrade",model="probe"}')

        served = _wait(lambda: _query(prom, 'mltrade_portfolio_equity_usd{job="mltrade-cli"}'),
                       "the series of `mltrade metrics serve`")
        assert float(served[0]["value"][1]) == 1_000_000.0  # no trades: the initial capital
        cli_fresh = _query(prom, 'mltrade_data_latest_session_timestamp_seconds{job="mltrade-cli"}')
        assert cli_fresh[0]["value"][1] == fresh[0]["value"][1]
        # `--as-of 2010-03-31` scores with bars through the 31st: the same date.
        cli_scored = _query(prom, 'mltrade_prediction_scored_session_timestamp_seconds'
                                  '{job="mltrade-cli",model="probe"}')
        assert cli_scored[0]["value"][1] == scored[0]["value"][1]

        groups = _get_json(f"{prom}/api/v1/rules")["data"]["groups"]
        alerts = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"MltradeDataStale", "MltradeKillSwitchOn"} <= alerts
        # With the sample's 2010 data the freshness alert is rightly firing.
        firing = _wait(lambda: [
            a for a in _get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
            if a["labels"]["alertname"] == "MltradeDataStale"
        ], "the stale-data alert")
        assert firing[0]["state"] in {"pending", "firing"}
    finally:
        for process in (proc, cli):
            process.terminate()
            process.wait(timeout=20)
        server.close()
        get_settings.cache_clear()


@pytest.mark.slow
def test_the_airflow_plugin_loads_and_its_listener_counts_task_instances(
    monkeypatch, request
) -> None:
    """The plugin through Airflow's plugin manager; its listener fired through the hooks."""
    from datetime import UTC, datetime

    from airflow import plugins_manager

    monkeypatch.setenv("GRAFANA_URL", "http://grafana.example:3000")
    monkeypatch.setenv("MLFLOW_UI_URL", "http://mlflow.example:5000")
    from pipelines.config import get_settings

    get_settings.cache_clear()
    from airflow import settings as airflow_settings

    monkeypatch.setattr(airflow_settings, "PLUGINS_FOLDER", str(ROOT / "plugins"))
    from airflow.sdk import listener as sdk_listener
    from airflow.sdk import plugins_manager as sdk_plugins

    caches = (plugins_manager._get_plugins, plugins_manager._get_ui_plugins,
              sdk_plugins._get_plugins, sdk_listener.get_listener_manager)

    def clear() -> None:  # the plugin lists and the listener manager are cached per process
        for cached in caches:
            cached.cache_clear()

    clear()
    request.addfinalizer(clear)  # later tests get Airflow's plugins as configured
    monkeypatch.syspath_prepend(str(ROOT / "plugins"))
    plugins, errors = plugins_manager._get_plugins()
    assert not errors, errors
    (plugin,) = [p for p in plugins if p.name == "mltrade"]
    assert [m.__name__ for m in plugin.listeners] == ["mltrade_listener"]
    links = {v["name"]: v["href"] for v in plugin.external_views}
    assert links == {"MLflow": "http://mlflow.example:5000",
                     "Grafana": "http://grafana.example:3000/dashboards/f/mltrade",
                     "mltrade cockpit": "/mltrade/"}
    assert [a["url_prefix"] for a in plugin.fastapi_apps] == ["/mltrade"]
    # What the REST API (/api/v2/plugins, read by the UI's navigation) serves for it.
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse

    (info,) = [i for i in plugins_manager.get_plugin_info() if i["name"] == "mltrade"]
    served = PluginResponse.model_validate(info)
    assert {(v.name, v.destination) for v in served.external_views} == {
        ("MLflow", "nav"), ("Grafana", "nav"), ("mltrade cockpit", "nav")}
    assert served.listeners == ["mltrade_listener"]

    def count(task_id: str, state: str) -> float:
        series = metrics.AIRFLOW_TASK_RUNS.labels("mltrade_listener_probe", task_id, state)
        return series._value.get()

    # The hooks called as the task runner calls them: through the SDK's listener manager,
    # which collects the listeners of the loaded plugins. (dag.test() on an ad-hoc DAG needs
    # it serialized in the metadata database first; the hook path is the same.)
    from types import SimpleNamespace

    from airflow.sdk.listener import get_listener_manager

    manager = get_listener_manager()
    assert manager.has_listeners
    started = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    ok = SimpleNamespace(dag_id="mltrade_listener_probe", task_id="ok", start_date=started,
                         end_date=datetime(2024, 1, 1, 12, 0, 42, tzinfo=UTC))
    boom = SimpleNamespace(dag_id="mltrade_listener_probe", task_id="boom", start_date=started,
                           end_date=None)
    before = count("ok", "success"), count("boom", "failed")
    manager.hook.on_task_instance_success(previous_state="running", task_instance=ok)
    manager.hook.on_task_instance_failed(
        previous_state="running", task_instance=boom, error=ValueError("expected")
    )
    get_settings.cache_clear()
    assert (count("ok", "success"), count("boom", "failed")) == (before[0] + 1, before[1] + 1)
    duration = metrics.AIRFLOW_TASK_DURATION.labels("mltrade_listener_probe", "ok")
    assert duration._sum.get() == 42.0
