"""`mltrade models evaluate` on the sample data in the warehouse, logged to a real MLflow store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from mlflow import MlflowClient
from pipelines.cli import app
from pipelines.config import get_settings
from pipelines.features.store import build_features, forward_returns, load_features
from pipelines.models import evaluation, ipca_returns, walk_forward
from pipelines.sources.sample import SampleSource

pytestmark = pytest.mark.slow

SYMBOLS = sorted(SampleSource().universe())[:60]
START, END = date(2010, 7, 1), date(2010, 8, 19)  # the last date whose next return is known


@pytest.fixture
def sample(warehouse, load_sample_bars, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    yield warehouse
    get_settings.cache_clear()


def test_evaluate_writes_a_gkx_table_for_every_kind_and_logs_it(sample) -> None:
    result = CliRunner().invoke(
        app,
        ["models", "evaluate", "--start", str(START), "--end", str(END), "--refit-every", "20"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["oos_start"] == "2010-07-01" and summary["oos_end"] == "2010-08-19"
    assert summary["folds"] == 2 and summary["purge"] == 1

    run = MlflowClient(get_settings().mlflow_uri).get_run(summary["mlflow_run_id"])
    metrics = run.data.metrics
    assert metrics["zero.r2_oos"] == 0.0
    assert "zero.rank_ic" not in metrics, "an undefined metric is not logged"
    for kind in ("xgboost", "random_forest", "ipca"):
        for metric in evaluation.METRICS:
            assert np.isfinite(metrics[f"{kind}.{metric}"]), (kind, metric)
        assert -1 <= metrics[f"{kind}.rank_ic"] <= 1
        assert 0 <= metrics[f"{kind}.turnover_ew"] <= 2
    table = MlflowClient(get_settings().mlflow_uri).download_artifacts(
        run.info.run_id, "evaluation.md"
    )
    text = Path(table).read_text()
    assert text.splitlines()[0] == "| model | " + " | ".join(evaluation.METRICS) + " |"
    assert {line.split("|")[1].strip() for line in text.splitlines()[2:]} == {
        "xgboost", "random_forest", "ipca", "zero"}

    # The IPCA row recomputed independently: the same folds, scipy's Spearman per date.
    features = load_features(sample, date(1900, 1, 1), END)
    labels = forward_returns(sample, date(1900, 1, 1), date(2010, 8, 20)).reindex(features.index)
    dates = sorted(set(features.index.get_level_values("session_date")))
    folds = walk_forward.make_folds(dates, START, END, refit_every=20)
    forecast = walk_forward.forecasts(features, labels, ipca_returns.fit, folds)
    frame = pd.DataFrame({"f": forecast, "r": labels.reindex(forecast.index)}).dropna()
    daily = frame.groupby(level="session_date").apply(
        lambda day: spearmanr(day["f"], day["r"]).statistic)
    assert metrics["ipca.rank_ic"] == pytest.approx(daily.mean(), abs=1e-10)
    r2 = 1 - np.sum((frame["r"] - frame["f"]) ** 2) / np.sum(frame["r"] ** 2)
    assert metrics["ipca.r2_oos"] == pytest.approx(r2, abs=1e-10)
    assert summary["oos_rows"] == len(frame)
