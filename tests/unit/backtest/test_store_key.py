from __future__ import annotations

from pipelines.backtest.data import MarketData
from pipelines.backtest.store import run_key


def test_the_run_key_follows_the_parameters_and_every_bar(market) -> None:
    params = {"strategy": "momentum", "n_windows": 3}
    key = run_key(params, market)
    assert run_key(dict(params), market) == key  # same inputs, same key: reruns replace
    assert run_key({**params, "n_windows": 4}, market) != key
    panels = {k: v.copy() for k, v in market.panels.items()}
    panels["volume"].iloc[-1, 0] += 1  # one share on one bar
    assert run_key(params, MarketData(panels)) != key
