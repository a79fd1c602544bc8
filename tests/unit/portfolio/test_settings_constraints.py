"""Settings → constraints: what the planner hands the optimizer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.portfolio.config import OptimizerConfig
from pipelines.portfolio.optimizer import optimize
from pipelines.portfolio.risk_model import FactorCovariance


def test_empty_optional_limits_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TURNOVER_LIMIT", "GROSS_LEVERAGE", "SECTOR_MAX_WEIGHT", "FACTOR_EXPOSURE_BOUND"):
        monkeypatch.setenv(name, "")
    s = Settings()
    assert (s.turnover_limit, s.gross_leverage, s.sector_max_weight) == (None, None, None)
    monkeypatch.setenv("TURNOVER_LIMIT", "0.3")
    assert Settings().turnover_limit == 0.3


def test_long_short_settings_give_a_dollar_neutral_book() -> None:
    s = Settings(portfolio_mode="long_short", gross_leverage=2.0, max_weight=0.1)
    symbols = ["AAPL", "MSFT", "XOM", "CVX", "JPM", "BAC", "PFE", "MRK"]
    c = OptimizerConfig.from_settings(s).constraints(symbols)
    assert (c.mode, c.budget, c.gross_leverage) == ("long_short", 0.0, 2.0)
    rng = np.random.default_rng(0)
    risk = FactorCovariance(symbols, rng.normal(0, 0.01, (2, 8)), np.full(8, 2e-4))
    mu = pd.Series(rng.normal(0, 1e-3, 8), index=symbols)
    w = optimize(mu, risk, c, method="mean_variance", risk_aversion=s.risk_aversion)
    assert w.sum() == pytest.approx(0.0, abs=1e-7) and w.abs().max() <= 0.1 + 1e-9


def test_sector_bound_uses_the_sample_package_sectors() -> None:
    s = Settings(sector_max_weight=0.3, max_weight=0.25, cash_buffer=0.0)
    symbols = ["AAPL", "MSFT", "IBM", "INTC", "XOM", "JNJ", "KO", "JPM"]
    c = OptimizerConfig.from_settings(s).constraints(symbols)
    assert c.sectors["AAPL"] == "Information Technology" and c.budget == 1.0
    rng = np.random.default_rng(1)
    risk = FactorCovariance(symbols, rng.normal(0, 0.01, (2, 8)), np.full(8, 2e-4))
    mu = pd.Series([0.004, 0.004, 0.004, 0.004, 0.0, 0.0, 0.0, 0.0], index=symbols)
    w = optimize(mu, risk, c, method="mean_variance", risk_aversion=1.0)
    assert w[["AAPL", "MSFT", "IBM", "INTC"]].sum() == pytest.approx(0.3, abs=1e-6)


def test_every_portfolio_setting_reaches_the_optimizer_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "OPTIMIZER": ("max_sharpe", "method"),
        "RISK_AVERSION": ("2.5", "risk_aversion"),
        "SOLVER": ("SCS", "solver"),
        "RISK_MODEL": ("ledoit_wolf", "risk_model"),
        "PORTFOLIO_MODE": ("long_short", "mode"),
        "MAX_WEIGHT": ("0.07", "max_weight"),
        "CASH_BUFFER": ("0.1", "cash_buffer"),
        "GROSS_LEVERAGE": ("1.5", "gross_leverage"),
        "SECTOR_MAX_WEIGHT": ("0.4", "sector_max_weight"),
        "FACTOR_EXPOSURE_BOUND": ("0.2", "factor_exposure_bound"),
        "TURNOVER_LIMIT": ("0.3", "turnover_limit"),
        "TURNOVER_PENALTY": ("0.001", "turnover_penalty"),
        "MIN_TRADE_WEIGHT": ("0.002", "min_trade_weight"),
        "MAX_ORDER_NOTIONAL": ("25000.0", "max_order_notional"),
    }
    default = OptimizerConfig.from_settings(Settings())
    for name, (value, _) in env.items():
        monkeypatch.setenv(name, value)
    config = OptimizerConfig.from_settings(Settings())
    assert {field for _, field in env.values()} == set(default.__dataclass_fields__)
    for value, field in env.values():
        got = getattr(config, field)
        assert got != getattr(default, field)
        assert str(got) == value or got == float(value)
