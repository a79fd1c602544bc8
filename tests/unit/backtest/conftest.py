from __future__ import annotations

import pytest

from pipelines.backtest.data import MarketData
from pipelines.backtest.synthetic import synthetic_market
from pipelines.config import Settings


@pytest.fixture(scope="session")
def market() -> MarketData:
    """30 synthetic symbols over 1.5 years (378 sessions) with a planted factor structure."""
    return synthetic_market(n_assets=30, n_years=1.5, seed=3)


@pytest.fixture
def plain_settings(monkeypatch, warehouse_url) -> Settings:
    """Settings from defaults only (no .env), with a limit loose enough for 30 symbols; the
    backtest's throwaway store goes on the test session's PostgreSQL server."""
    monkeypatch.chdir("/")
    return Settings(max_weight=0.1, initial_capital=1_000_000.0)
