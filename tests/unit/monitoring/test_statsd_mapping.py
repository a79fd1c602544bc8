"""deploy/statsd-exporter/mapping.yml against every metric in the installed Airflow's registry.

Airflow's registry (``metrics_template.yaml``) lists each metric's new name and, where it has
one, its legacy dotted name with ``{variables}``. Each legacy name, filled with sample values,
must become one labelled series whose labels are its variables; each new name that repeats a
labelled series must be dropped; no Prometheus name may come out with two label sets (the
exporter refuses the second). Dashboards and alert rules may only name series that come out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support.statsd_mapping import Mapping

ROOT = Path(__file__).resolve().parents[3]
MAPPING = ROOT / "deploy" / "statsd-exporter" / "mapping.yml"
PREFIX = "airflow"
# Legacy names left to the exporter's default naming, with why.
UNMAPPED = {
    "edge_worker.": "the Edge executor is not part of this stack",
    "ol.": "OpenLineage is not configured",
}
DROPPED_LABELS = {"job_id"}  # one series per job would grow without bound


def _registry() -> list[dict]:
    from airflow._shared.observability.metrics.metrics_registry import (
        YAML_REGISTRY_PATH,
        read_metrics_yaml,
    )

    return read_metrics_yaml(str(YAML_REGISTRY_PATH))


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return Mapping(MAPPING)


def _fill(template: str) -> tuple[str, dict[str, str]]:
    """The name with each {variable} replaced by a sample value, and those values."""
    values = {v: f"x{v.replace('_', '')}" for v in re.findall(r"\{(\w+)\}", template)}
    return template.format(**values), values


def _mapped_legacy(registry: list[dict]) -> list[dict]:
    return [m for m in registry if m.get("legacy_name", "-") != "-"
            and not m["legacy_name"].startswith(tuple(UNMAPPED))]


def test_every_legacy_name_becomes_one_series_labelled_by_its_variables(mapping) -> None:
    registry = _registry()
    legacy = _mapped_legacy(registry)
    assert len(legacy) >= 25, "the registry's shape changed: is this still Airflow 3.3?"
    for metric in legacy:
        name, values = _fill(metric["legacy_name"])
        series = mapping.map(f"{PREFIX}.{name}")
        assert series.rule and not series.dropped, f"{name} is not mapped"
        expected = {k: v for k, v in values.items() if k not in DROPPED_LABELS}
        # The mapping may name a label more plainly than Airflow's variable.
        renamed = {"executor_class_name": "executor", "operator_name": "operator",
                   "task_type": "operator"}
        wanted = {renamed.get(k, k): v for k, v in expected.items()}
        assert wanted.items() <= series.labels.items(), name
        # dagrun.duration.<state>.<dag_id>: Airflow puts the state in the name, not a variable.
        assert set(series.labels) - set(wanted) <= {"state"}, name
        assert series.name.startswith("airflow_") and re.fullmatch(r"[a-z0-9_]+", series.name)
        if metric["type"] == "counter":
            assert series.name.endswith("_total"), series.name
        if metric["type"] == "timer":
            assert series.name.endswith("_seconds"), series.name


def test_new_names_that_repeat_a_labelled_series_are_dropped(mapping) -> None:
    for metric in _mapped_legacy(_registry()):
        if "{" in metric["name"]:
            continue  # a new name with a variable in it: no unlabelled twin
        series = mapping.map(f"{PREFIX}.{metric['name']}")
        assert series.dropped, f"{metric['name']} would count {metric['legacy_name']} twice"


def test_no_prometheus_name_comes_out_with_two_label_sets(mapping) -> None:
    seen: dict[str, tuple[frozenset, str]] = {}
    for metric in _registry():
        for template in (metric["name"], metric.get("legacy_name", "-")):
            if template == "-":
                continue
            name, _ = _fill(template)
            series = mapping.map(f"{PREFIX}.{name}")
            if series.dropped:
                continue
            labels = frozenset(series.labels)
            if series.name in seen:
                assert seen[series.name][0] == labels, (
                    f"{series.name} has labels {sorted(labels)} from {name} but "
                    f"{sorted(seen[series.name][0])} from {seen[series.name][1]}")
            seen[series.name] = (labels, name)


def test_what_a_real_dag_run_sends_is_mapped(mapping) -> None:
    """Lines captured from Airflow 3.3.2's dag.test() of a two-task DAG (ok, boom)."""
    assert mapping.map("airflow.ti.finish.statsd_probe.boom.failed").labels == {
        "dag_id": "statsd_probe", "task_id": "boom", "state": "failed"}
    # A task in a task group: Airflow sends "grp.load" as "grp__load".
    assert mapping.map("airflow.dag.etl.grp__load.duration").labels == {
        "dag_id": "etl", "task_id": "grp__load"}
    assert mapping.map("airflow.dagrun.duration.success.market_data").labels == {
        "state": "success", "dag_id": "market_data"}
    created = mapping.map("airflow.task_instance_created__PythonDecoratedOperator")
    assert (created.name, created.labels) == (
        "airflow_task_instance_created_total", {"operator": "_PythonDecoratedOperator"})
    assert mapping.map("airflow.pool.open_slots.broker").name == "airflow_pool_open_slots"
    assert mapping.map("airflow.pool.open_slots").dropped
    assert mapping.map("airflow.scheduler_heartbeat").name == "airflow_scheduler_heartbeat_total"
    assert mapping.map("airflow.dagbag_size").rule is None  # default name, no labels


def airflow_series(mapping: Mapping) -> set[str]:
    """Every Prometheus sample name Airflow's metrics can come out as through the mapping."""
    names: set[str] = set()
    for metric in _registry():
        for template in (metric["name"], metric.get("legacy_name", "-")):
            if template == "-":
                continue
            series = mapping.map(f"{PREFIX}.{_fill(template)[0]}")
            if series.dropped:
                continue
            if metric["type"] == "timer":
                names |= {f"{series.name}{s}" for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(series.name)
    return names


def test_dashboards_and_alerts_name_only_series_the_mapping_produces(mapping) -> None:
    produced = airflow_series(mapping)
    texts = {p.name: json.dumps([t["expr"] for panel in json.loads(p.read_text())["panels"]
                                 for t in panel["targets"]])
             for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")}
    texts["alerts.yml"] = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    used = {(where, name) for where, text in texts.items()
            for name in re.findall(r"\b(airflow_[a-z0-9_]+)\b", text)}
    assert any(where == "alerts.yml" for where, _ in used), "the DAG-failure alert uses statsd"
    assert any(where == "pipeline-health.json" for where, _ in used)
    unknown = sorted((w, n) for w, n in used if n not in produced)
    assert not unknown, f"queries name series the statsd mapping does not produce: {unknown}"


def test_the_compose_service_loads_the_mapping() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["statsd-exporter"]
    assert "--statsd.mapping-config=/etc/statsd-exporter/mapping.yml" in service["command"]
    assert ("./deploy/statsd-exporter/mapping.yml:/etc/statsd-exporter/mapping.yml:ro"
            in service["volumes"])
