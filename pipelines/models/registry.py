"""The MLflow tracking store and model registry — the only module that imports ``mlflow``.

Aliases, not the deprecated stages: ``challenger`` (newest trained), ``champion`` (used for
trading), ``previous_champion`` (kept for rollback). Every version carries the tags that make
it reproducible: feature set and version, data window, code version and a training key.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

import mlflow
import pipelines
from mlflow import MlflowClient
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.errors import ModelError, RegistryUnavailableError
from pipelines.models import check_version_format
from pipelines.monitoring.logging import redact

EXPERIMENT = "mltrade"


def _not_found(exc: MlflowException) -> bool:
    """Whether MLflow said, definitely, that the model, version or alias does not exist.

    Only MLflow's own answers count: ``RESOURCE_DOES_NOT_EXIST``, or the stores' "alias …
    not found" (``INVALID_PARAMETER_VALUE``). A bare 404 from a proxy, a 503, a timeout or a
    refused connection are "unavailable", never "absent".
    """
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(exc.message).lower()
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in message and (
        "not found" in message or "does not exist" in message
    )


@contextmanager
def _reaching(settings: Settings, what: str) -> Iterator[None]:
    """Turn any failure to talk to MLflow into :class:`RegistryUnavailableError` naming it."""
    try:
        yield
    except (MlflowException, OSError) as exc:
        first = (str(getattr(exc, "message", exc)).strip().splitlines() or [type(exc).__name__])[0]
        raise RegistryUnavailableError(
            f"MLflow at {redact(settings.mlflow_uri)} failed during {what} "
            f"({type(exc).__name__}: {redact(first[:200])}); nothing was changed in the "
            "registry. Check that the MLflow server is up and MLFLOW_TRACKING_URI is right "
            "(`mltrade check`), then rerun"
        ) from exc


def _client(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store; create the experiment on first use."""
    uri = settings.mlflow_uri
    if uri.startswith("sqlite:///"):
        settings.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=settings.mlflow_artifacts.as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient(uri)


def code_version() -> str:
    """The package version and, in a git checkout, the commit."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = "unknown"
    return f"{pipelines.__version__}+{sha}"


class _Predictor(PythonModel):  # type: ignore[misc]
    """Serves any of the project's models that has ``predict(features) -> array``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(self.model.predict(model_input), dtype=float)


def log_model(
    settings: Settings,
    model_name: str,
    kind: str,
    model: Any,
    input_example: Any,
    params: dict,
    metrics: dict,
    tags: dict[str, str],
) -> str:
    """Log and register a fitted model (any ``MODEL_KIND``); return its version.

    XGBoost uses MLflow's xgboost flavor; the others are served as a pyfunc around the
    object's own ``predict``.
    """
    _client(settings)
    tags = _safe_tags({**tags, "model_kind": kind, "code_version": code_version()})
    signature = infer_signature(input_example, model.predict(input_example))
    # Explicit requirements: inferring them loads the model in a subprocess (~10 s).
    common = {
        "name": "model",
        "registered_model_name": model_name,
        "signature": signature,
        "input_example": input_example,
    }
    with mlflow.start_run(run_name=f"{model_name}-{kind}-{tags.get('train_end', '')}", tags=tags):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        if kind == "xgboost":
            info = mlflow.xgboost.log_model(
                model, pip_requirements=[f"xgboost=={xgboost.__version__}"], **common
            )
        else:
            info = mlflow.pyfunc.log_model(
                python_model=_Predictor(model),
                pip_requirements=[f"mltrade=={pipelines.__version__}"],
                **common,
            )
    client = MlflowClient(settings.mlflow_uri)
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    return version


def _safe_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tag values through the redaction boundary: MLflow tags leave the process."""
    return {key: redact(value) for key, value in tags.items()}


def find_version(settings: Settings, model_name: str, training_key: str) -> str | None:
    """The version registered with this training key, if any (MLflow unreachable: an error)."""
    with _reaching(settings, f"the search for {model_name}'s training key {training_key}"):
        client = _client(settings)
        try:
            found = client.search_model_versions(
                f"name = '{model_name}' and tags.training_key = '{training_key}'"
            )
            versions = [int(v.version) for v in found]
        except MlflowException as exc:
            if not _not_found(exc):
                raise
            versions = []
    return str(max(versions)) if versions else None


def version_tags(settings: Settings, model_name: str, version: str) -> dict[str, str]:
    with _reaching(settings, f"reading the tags of {model_name} version {version}"):
        return dict(_client(settings).get_model_version(model_name, version).tags)


def get_alias_version(settings: Settings, model_name: str, alias: str) -> str | None:
    """The version an alias points to; None only when MLflow says the alias or model does
    not exist. Any other failure raises :class:`RegistryUnavailableError`: an unreachable
    registry is not "no champion"."""
    with _reaching(settings, f"the lookup of {model_name}@{alias}"):
        client = _client(settings)
        try:
            return str(client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise


def require_version(settings: Settings, model_name: str, version: str) -> None:
    """Fail with :class:`ModelError` unless ``version`` of ``model_name`` is registered.

    Called before any alias is written, so a bad version leaves every alias as it was.
    """
    check_version_format(version)
    with _reaching(settings, f"the check of {model_name} version {version}"):
        client = _client(settings)
        try:
            client.get_model_version(model_name, str(version))
        except MlflowException as exc:
            if not _not_found(exc):
                raise
            raise ModelError(
                f"{model_name} has no version {version}; see the registered versions in the "
                "MLflow UI, or train one (`mltrade train`)"
            ) from None


def set_alias(settings: Settings, model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``, after checking that the version exists."""
    require_version(settings, model_name, version)
    with _reaching(settings, f"setting {model_name}@{alias} to version {version}"):
        _client(settings).set_registered_model_alias(model_name, alias, version)


def load_model(settings: Settings, model_name: str, version: str) -> Any:
    """A registered version as a pyfunc: ``.predict(features frame) -> expected returns``."""
    with _reaching(settings, f"loading {model_name} version {version}"):
        _client(settings)
        return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")


def log_evaluation(
    settings: Settings,
    metrics: dict[str, float],
    params: dict,
    tags: dict[str, str],
    artifacts: dict[str, str],
) -> str:
    """Log an evaluation run: metrics, parameters, and text artifacts (file name -> content).

    Non-finite metrics (e.g. the zero baseline's undefined rank IC) are left out. Returns the
    MLflow run id.
    """
    _client(settings)
    finite = {key: float(value) for key, value in metrics.items() if np.isfinite(value)}
    name = f"evaluate-{params.get('oos_start', '')}-{params.get('oos_end', '')}"
    safe = _safe_tags({**tags, "code_version": code_version()})
    with mlflow.start_run(run_name=name, tags=safe) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(finite)
        for file_name, content in artifacts.items():
            mlflow.log_text(content, file_name)
    return str(run.info.run_id)


def log_backtest(
    settings: Settings,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: str | None,
    tags: dict[str, str],
) -> str:
    """Log a backtest as an MLflow run (params, finite metrics, a folder of artifacts).

    Returns the MLflow run id; a run already logged with the same ``run_key`` tag is returned
    instead of logging another. Parameters are flattened to strings (MLflow's limit is 6000
    characters a value); metrics that are NaN or infinite are left out.
    """
    client = _client(settings)
    key = tags.get("run_key")
    if key:  # idempotent: the same backtest is logged once
        experiment = client.get_experiment_by_name(EXPERIMENT)
        found = experiment and client.search_runs(
            [experiment.experiment_id], f"tags.run_key = '{key}'", max_results=1
        )
        if found:
            return str(found[0].info.run_id)
    flat = {k: str(v)[:6000] for k, v in params.items()}
    finite = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    with mlflow.start_run(
        run_name=run_name,
        tags=_safe_tags({**tags, "kind": "backtest", "code_version": code_version()}),
    ) as run:
        mlflow.log_params(flat)
        mlflow.log_metrics(finite)
        if artifacts:
            mlflow.log_artifacts(artifacts)
        return str(run.info.run_id)
