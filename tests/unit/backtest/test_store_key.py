from __future__ import annotations

from pipelines.backtest.data import MarketData
from pipelines.backtest.store import OPERATIONAL, is_secret, result_settings, run_key


def test_the_run_key_follows_the_parameters_and_every_bar(market) -> None:
    params = {"strategy": "momentum", "n_windows": 3}
    key = run_key(params, market)
    assert run_key(dict(params), market) == key  # same inputs, same key: reruns replace
    assert run_key({**params, "n_windows": 4}, market) != key
    panels = {k: v.copy() for k, v in market.panels.items()}
    panels["volume"].iloc[-1, 0] += 1  # one share on one bar
    assert run_key(params, MarketData(panels)) != key


CHANGES = {
    "optimizer": "max_sharpe",
    "portfolio_mode": "long_short",
    "gross_leverage": 1.5,
    "sector_max_weight": 0.3,
    "factor_exposure_bound": 0.5,
    "turnover_limit": 0.2,
    "turnover_penalty": 0.01,
    "min_trade_weight": 0.001,
    "solver": "SCS",
    "risk_model": "ledoit_wolf",
    "risk_aversion": 2.0,
    "max_weight": 0.2,
    "cash_buffer": 0.05,
    "min_order_notional": 50.0,
    "max_order_notional": 50_000.0,
    "max_orders_per_run": 10,
    "initial_capital": 2_000_000.0,
    "commission_per_share": 0.005,
    "slippage_bps": 2.0,
    "spread_bps": 4.0,
    "impact_coefficient": 0.2,
    "borrow_rate": 0.01,
    "margin_rate": 0.02,
    "var_method": "normal",
    "var_confidence": 0.95,
    "var_horizon_days": 5,
    "max_var": 0.1,
    "daily_loss_limit": 0.05,
    "max_drawdown": 0.3,
    "risk_breach_action": "scale",
    "strategy": "other",
    "max_quarantine_fraction": 0.1,
    "max_close_jump": 0.3,
}


def test_the_run_key_changes_with_every_setting_that_can_change_a_result(market) -> None:
    from pipelines.config import Settings

    params = {"strategy": "momentum"}
    base = Settings(_env_file=None)
    key = run_key(params, market, base, "1.0+abc")
    for name, value in CHANGES.items():
        changed = base.model_copy(update={name: value})
        assert run_key(params, market, changed, "1.0+abc") != key, name
    assert run_key(params, market, base, "1.0+def") != key  # the code version counts
    # Where state lives and how to reach vendors does not change a result (nor leaks a secret).
    moved = base.model_copy(update={"warehouse_url": "postgresql://x@h/db", "log_level": "DEBUG"})
    assert run_key(params, market, moved, "1.0+abc") == key
    assert "alpaca_secret_key" not in result_settings(base)


def test_every_setting_is_either_in_the_key_or_named_operational() -> None:
    from pipelines.config import Settings

    fields = Settings.model_fields
    secrets = {n for n, info in fields.items() if is_secret(info.annotation)}
    keyed = set(result_settings(Settings(_env_file=None)))
    assert set(CHANGES) <= keyed
    assert {"alpaca_secret_key", "reddit_client_secret", "newsapi_api_key"} <= secrets
    assert not secrets & keyed
    assert [n for n in set(fields) - keyed - secrets if not OPERATIONAL.match(n)] == []
