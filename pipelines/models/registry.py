"""The MLflow tracking store and model registry — the only module that imports ``mlflow``.

Aliases, not the deprecated stages: ``challenger`` (newest trained), ``champion`` (used for
trading), ``previous_champion`` (kept for rollback). Every version carries the tags that make
it reproducible: feature set and version, data window, code version and a training key.

Runs go to one experiment per purpose (:data:`EXPERIMENTS`: training, evaluation,
backtests), each tagged ``mlflow.experimentKind=custom_model_development`` (MLflow's
"machine learning" kind, so the UI lists runs rather than the GenAI overview) and described.
MLflow 3.17's UI picks its view from a ``workflowType`` URL parameter (or the sidebar toggle
it remembers) before the tag: :func:`experiment_url` gives links that carry it.

:class:`MLflowRegistry` is the model registry behind the project's
:class:`~pipelines.models.return_model.Registry` port (built once, in
:mod:`pipelines.runtime`); the module functions log runs to the tracking store (evaluations,
backtests).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

import mlflow
import pipelines
from mlflow import MlflowClient
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.errors import ModelError, RegistryUnavailableError
from pipelines.models import ModelRef, check_version_format
from pipelines.models.return_model import ReturnModel
from pipelines.monitoring.logging import redact

EXPERIMENT = "mltrade"  # the single experiment of stores written before the split below
TRAINING, EVALUATION, BACKTESTS = "mltrade-training", "mltrade-evaluation", "mltrade-backtests"
EXPERIMENTS = {
    TRAINING: "One run per registered model version: parameters, validation metrics, the "
    "feature window as a dataset, feature importance and validation plots.",
    EVALUATION: "Walk-forward out-of-sample comparison of every model kind with a zero "
    "forecast (the GKX table: R², rank IC, decile long-short Sharpe and turnover).",
    BACKTESTS: "Walk-forward backtests after costs: metrics, Monte Carlo intervals and a "
    "self-contained HTML tearsheet (index.html).",
}
# MLflow's experiment kind for classic model training (the UI's "Machine learning").
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
MODEL_DESCRIPTION = (
    "Expected next-session simple return of each stock from the price-based feature set "
    "(mltrade). Aliases: `@champion` trades, `@challenger` is the newest trained version "
    "awaiting the promotion gate, `@previous_champion` is kept for rollback. Setting "
    "`@champion` here promotes by hand; the next rebalance uses it and records the change."
)


def _not_found(exc: MlflowException) -> bool:
    """Whether MLflow said, definitely, that the model, version or alias does not exist.

    Only MLflow's own answers count: ``RESOURCE_DOES_NOT_EXIST``, or the stores' "alias …
    not found" (``INVALID_PARAMETER_VALUE``). A bare 404 from a proxy, a 503, a timeout or a
    refused connection are "unavailable", never "absent".
    """
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(exc.message).lower()
    return (
        exc.error_code == "INVALID_PARAMETER_VALUE"
        and "alias" in message
        and ("not found" in message or "does not exist" in message)
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


def _experiment(client: MlflowClient, settings: Settings, name: str) -> str:
    """The experiment's id, created (described, tagged) on first use; older ones get the tags."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(
            name,
            artifact_location=(settings.mlflow_artifacts / name).as_uri(),
            tags={**EXPERIMENT_KIND, "mlflow.note.content": EXPERIMENTS.get(name, "")},
        )
    if found.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
        for key, value in EXPERIMENT_KIND.items():
            client.set_experiment_tag(found.experiment_id, key, value)
    return str(found.experiment_id)


def _client(settings: Settings, experiment: str = TRAINING) -> MlflowClient:
    """Point MLflow at the configured store and at ``experiment`` (created on first use)."""
    uri = settings.mlflow_uri
    if uri.startswith("sqlite:///"):
        settings.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    mlflow.set_experiment(experiment_id=_experiment(client, settings, experiment))
    return client


def experiment_url(settings: Settings, experiment: str = TRAINING) -> str:
    """The MLflow UI's runs view of ``experiment`` (``MLFLOW_UI_URL``), in its ML workflow."""
    experiment_id = _experiment(_client(settings, experiment), settings, experiment)
    base = settings.mlflow_ui_url.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


class WarehouseFeatures(DatasetSource):  # type: ignore[misc]
    """Where a training set came from: the warehouse's ``features`` table, one feature set
    version, the session dates ``[start, end]`` (shown as the dataset's source in MLflow)."""

    def __init__(self, feature_set: str, feature_set_version: str, start: str, end: str) -> None:
        self.spec = {
            "table": "features",
            "feature_set": feature_set,
            "feature_set_version": feature_set_version,
            "start": start,
            "end": end,
        }

    @staticmethod
    def _get_source_type() -> str:
        return "warehouse"

    def load(self) -> Any:  # the rows are read by pipelines.features.store, not through MLflow
        raise TypeError("load the features with pipelines.features.store.load_features")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> WarehouseFeatures:
        raise TypeError("a WarehouseFeatures source is built explicitly")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> WarehouseFeatures:
        return cls(
            *(str(source_dict[k]) for k in ("feature_set", "feature_set_version", "start", "end"))
        )


@dataclass
class TrainingRecord:
    """What a training run shows besides the model: the data it saw and its diagnostics.

    ``train``/``validation``: the feature rows (with the label column ``target``) of the
    fitting and validation dates; ``artifacts``: a folder logged as is (tables, plots);
    ``tables``: frames logged as MLflow tables (``NAME.json``, a grid in the UI);
    ``started_at``: when the fit began (seconds since the epoch), so the run's duration is
    the real one.
    """

    source: WarehouseFeatures
    train: pd.DataFrame
    validation: pd.DataFrame
    artifacts: Path | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    started_at: float | None = None
    description: str = ""


def _log_datasets(record: TrainingRecord) -> None:
    spec = record.source.spec
    tags = {k: str(v) for k, v in spec.items()}
    for context, frame in (("training", record.train), ("validation", record.validation)):
        if frame.empty:
            continue
        name = f"features-{spec['feature_set']}-{spec['feature_set_version']}-{context}"
        dataset = from_pandas(frame, source=record.source, targets="target", name=name)
        mlflow.log_input(dataset, context=context, tags=tags)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


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


def _safe_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tag values through the redaction boundary: MLflow tags leave the process."""
    return {key: redact(value) for key, value in tags.items()}


class MLflowRegistry:
    """The MLflow model registry as a :class:`~pipelines.models.return_model.Registry`, plus
    what training needs (:meth:`register`, :meth:`find_version`, :meth:`tags`).

    Every call that fails to reach MLflow raises :class:`RegistryUnavailableError`; only
    MLflow's own "does not exist" reads as absent. What it returns are project types and
    plain values: a loaded version is a :class:`ReturnModel` around the fitted estimator.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points to; None only when MLflow says the alias or model does
        not exist. Any other failure raises :class:`RegistryUnavailableError`: an unreachable
        registry is not "no champion"."""
        with _reaching(self.settings, f"the lookup of {name}@{alias}"):
            client = _client(self.settings)
            try:
                return str(client.get_model_version_by_alias(name, alias).version)
            except MlflowException as exc:
                if _not_found(exc):
                    return None
                raise

    def require_version(self, name: str, version: str) -> None:
        """Fail with :class:`ModelError` unless ``version`` of ``name`` is registered.

        Called before any alias is written, so a bad version leaves every alias as it was.
        """
        self.tags(ModelRef(name, version))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``, after checking that the version exists."""
        self.require_version(name, version)
        with _reaching(self.settings, f"setting {name}@{alias} to version {version}"):
            _client(self.settings).set_registered_model_alias(name, alias, version)

    def remove_alias(self, name: str, alias: str) -> None:
        """Delete ``alias`` from ``name`` (no error when it is not set)."""
        with _reaching(self.settings, f"removing {name}@{alias}"):
            try:
                _client(self.settings).delete_registered_model_alias(name, alias)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise

    def tags(self, ref: ModelRef) -> dict[str, str]:
        """The version's tags (feature set, window, kind, training key, code version);
        :class:`ModelError` when the version is not registered."""
        check_version_format(ref.version)
        with _reaching(self.settings, f"the check of {ref.name} version {ref.version}"):
            client = _client(self.settings)
            try:
                return dict(client.get_model_version(ref.name, str(ref.version)).tags)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise
        raise ModelError(
            f"{ref.name} has no version {ref.version}; see the registered versions in the "
            "MLflow UI, or train one (`mltrade train`)"
        )

    def load(self, ref: ModelRef) -> ReturnModel:
        """The registered version as a :class:`ReturnModel`: the fitted estimator (MLflow's
        xgboost flavor, or the object a pyfunc serves), its input columns from the logged
        signature, and the feature set version it was trained on."""
        tags = self.tags(ref)
        with _reaching(self.settings, f"loading {ref.name} version {ref.version}"):
            _client(self.settings)
            served = mlflow.pyfunc.load_model(f"models:/{ref.name}/{ref.version}")
        if tags.get("model_kind") == "xgboost":  # logged with the xgboost flavor (register)
            estimator = served.get_raw_model()
        else:
            estimator = served.unwrap_python_model().model
        columns = tuple(served.metadata.get_input_schema().input_names())
        return ReturnModel(ref, tags.get("feature_set_version", ""), columns, estimator)

    def find_version(self, name: str, training_key: str) -> str | None:
        """The version registered with this training key, if any (MLflow unreachable: an
        error, never a reason to train again)."""
        with _reaching(self.settings, f"the search for {name}'s training key {training_key}"):
            client = _client(self.settings)
            try:
                found = client.search_model_versions(
                    f"name = '{name}' and tags.training_key = '{training_key}'"
                )
                versions = [int(v.version) for v in found]
            except MlflowException as exc:
                if not _not_found(exc):
                    raise
                versions = []
        return str(max(versions)) if versions else None

    def register(
        self,
        name: str,
        kind: str,
        model: Any,
        input_example: Any,
        params: dict,
        metrics: dict,
        tags: dict[str, str],
        record: TrainingRecord | None = None,
    ) -> str:
        """Log and register a fitted model (any ``MODEL_KIND``); return its version.

        XGBoost uses MLflow's xgboost flavor; the others are served as a pyfunc around the
        object's own ``predict``. With a ``record`` the run also logs the training and
        validation datasets, its artifact folder and a description, and starts when the fit
        did.
        """
        settings = self.settings
        client = _client(settings, TRAINING)
        tags = _safe_tags({**tags, "model_kind": kind, "code_version": code_version()})
        signature = infer_signature(input_example, model.predict(input_example))
        # Explicit requirements: inferring them loads the model in a subprocess (~10 s).
        common = {
            "name": "model",
            "registered_model_name": name,
            "signature": signature,
            "input_example": input_example,
        }
        run_tags = dict(tags)
        if record is not None and record.description:
            run_tags["mlflow.note.content"] = record.description
        started = client.create_run(
            _experiment(client, settings, TRAINING),
            start_time=_ms(record.started_at if record else None),
            tags=run_tags,
            run_name=f"{name}-{kind}-{tags.get('train_end', '')}",
        )
        with mlflow.start_run(run_id=started.info.run_id):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            if record is not None:
                _log_datasets(record)
                if record.artifacts is not None:
                    mlflow.log_artifacts(str(record.artifacts))
                for table_name, table in record.tables.items():
                    mlflow.log_table(table, f"{table_name}.json")
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
        version = str(info.registered_model_version)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))
        self._describe(name, version, record.description if record else "")
        return version

    def _describe(self, name: str, version: str, description: str) -> None:
        """Descriptions shown on the registered model's and the version's pages."""
        client = _client(self.settings)
        if not client.get_registered_model(name).description:
            client.update_registered_model(name, description=MODEL_DESCRIPTION)
        if description:
            client.update_model_version(name, version, description=description)


def log_evaluation(
    settings: Settings,
    metrics: dict[str, float],
    params: dict,
    tags: dict[str, str],
    artifacts: dict[str, str],
    started_at: float | None = None,
    table: pd.DataFrame | None = None,
) -> str:
    """Log an evaluation run: metrics, parameters, and text artifacts (file name -> content).

    Non-finite metrics (e.g. the zero baseline's undefined rank IC) are left out. ``table``
    is also logged as an MLflow table (``evaluation.json``, shown as a grid in the UI);
    ``started_at`` (epoch seconds) is when the evaluation began. Returns the MLflow run id.
    """
    client = _client(settings, EVALUATION)
    finite = {key: float(value) for key, value in metrics.items() if np.isfinite(value)}
    name = f"evaluate-{params.get('oos_start', '')}-{params.get('oos_end', '')}"
    started = client.create_run(
        _experiment(client, settings, EVALUATION),
        start_time=_ms(started_at),
        tags=_safe_tags({**tags, "code_version": code_version()}),
        run_name=name,
    )
    with mlflow.start_run(run_id=started.info.run_id) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(finite)
        for file_name, content in artifacts.items():
            mlflow.log_text(content, file_name)
        if table is not None:
            mlflow.log_table(table.reset_index(), "evaluation.json")
    return str(run.info.run_id)


def log_backtest(
    settings: Settings,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: str | None,
    tags: dict[str, str],
    started_at: float | None = None,
    ended_at: float | None = None,
) -> str:
    """Log a backtest as an MLflow run (params, finite metrics, a folder of artifacts).

    Returns the MLflow run id; a run already logged with the same ``run_key`` tag is returned
    instead of logging another. Parameters are flattened to strings (MLflow's limit is 6000
    characters a value); metrics that are NaN or infinite are left out. ``started_at`` and
    ``ended_at`` (epoch seconds) bound the backtest's own work, so the run's duration in the
    UI is the backtest's, not the time it took to log it.
    """
    client = _client(settings, BACKTESTS)
    experiment_id = _experiment(client, settings, BACKTESTS)
    key = tags.get("run_key")
    if key:  # idempotent: the same backtest is logged once (before the split: in EXPERIMENT)
        older = client.get_experiment_by_name(EXPERIMENT)
        ids = [experiment_id] + ([older.experiment_id] if older else [])
        found = client.search_runs(ids, f"tags.run_key = '{key}'", max_results=1)
        if found:
            return str(found[0].info.run_id)
    flat = {k: str(v)[:6000] for k, v in params.items()}
    finite = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    run = client.create_run(
        experiment_id,
        start_time=_ms(started_at),
        tags=_safe_tags({**tags, "kind": "backtest", "code_version": code_version()}),
        run_name=run_name,
    )
    run_id = str(run.info.run_id)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(flat)
        mlflow.log_metrics(finite)
        if artifacts:
            mlflow.log_artifacts(artifacts)
    client.set_terminated(
        run_id,
        RunStatus.to_string(RunStatus.FINISHED),
        end_time=_ms(ended_at if ended_at is not None else time.time()),
    )
    return run_id
