"""The planner with an IPCA champion: the risk model is IPCA's factor structure."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.config import get_settings
from pipelines.features.store import build_features
from pipelines.models.inference import predict
from pipelines.models.registry import MLflowRegistry
from pipelines.models.training import promote, train
from pipelines.portfolio.planner import build_plan, risk_model_for
from pipelines.portfolio.risk_model import trailing_returns
from pipelines.warehouse.plans import target_weights

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T", "PFE", "MRK",
           "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]  # fmt: skip
AS_OF = date(2010, 8, 9)
DAY = date(2010, 8, 10)


def test_an_ipca_champion_gives_an_ipca_risk_model_and_factor_bounds_hold(
    warehouse: sa.Engine, load_sample_bars, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MODEL_KIND", "ipca")
    get_settings.cache_clear()
    settings = get_settings().model_copy(
        update={"risk_model": "ipca", "factor_exposure_bound": 0.5, "max_weight": 0.15}
    )
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    registry = MLflowRegistry(settings)
    ref = train(warehouse, registry, settings, AS_OF, "run-ipca")
    promote(registry, ref.name, ref.version)
    model, _ = predict(warehouse, registry, ref.name, AS_OF, "run-ipca")

    def factors():  # noqa: ANN202 - what the champion predictor hands the planner
        return model.factor_model

    returns = trailing_returns(warehouse, AS_OF, SYMBOLS)
    risk, kind, loadings = risk_model_for(
        warehouse, settings.risk_model, ref.name, ref.version, AS_OF, returns, factors
    )
    assert kind == "ipca" and loadings is not None
    assert risk.loadings.shape == (3, len(risk.symbols))  # K = 3 rows, not the T = 120 window
    # the factor part is β Σ_f βᵀ: the implied loadings reproduce it
    factor_part = risk.loadings.T @ risk.loadings
    assert np.linalg.matrix_rank(factor_part, tol=1e-14) <= 3

    plan = build_plan(warehouse, settings, DAY, ref.name, ref.version, "run-plan",
                      factor_model=factors)  # fmt: skip
    weights = target_weights(warehouse, plan).reindex(risk.symbols).fillna(0.0)
    assert np.all(np.abs(loadings.T @ weights.to_numpy()) <= 0.5 + 1e-6)
    with warehouse.connect() as conn:
        summary = conn.execute(
            sa.text("SELECT summary FROM pipeline_runs WHERE stage = 'optimize'")
        ).scalar_one()
    assert summary["risk_model"] == "ipca"
    get_settings.cache_clear()
