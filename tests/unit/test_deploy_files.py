"""The deployment files, checked without a Docker engine: structure, health checks, secrets."""

from __future__ import annotations

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


def test_airflow_components_run_the_project_image(compose: dict) -> None:
    airflow = {n: s for n, s in compose["services"].items() if n.startswith("airflow-")}
    assert {"airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer"} <= set(airflow)
    for name, service in airflow.items():
        assert service["image"] == "mltrade:latest", name
        assert service["environment"]["TRADING_MODE"].startswith("${TRADING_MODE:-paper}")


def test_prometheus_config_parses_and_scrapes_the_stack() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"prometheus", "mlflow"} <= jobs
