from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.backtest import montecarlo
from pipelines.backtest.data import MarketData
from pipelines.backtest.engine import BacktestConfig, run
from pipelines.backtest.splits import WalkForward
from pipelines.config import Settings
from pipelines.execution.costs import CostModel

PLAN = WalkForward(n_windows=3, oos_ratio=0.3)


def _config(market: MarketData, strategy: str = "momentum", **kwargs) -> BacktestConfig:
    return BacktestConfig(strategy, market.sessions[0], market.sessions[-1], PLAN, **kwargs)


def _altered_from(market: MarketData, cut_row: int, seed: int) -> MarketData:
    """The market with every bar from ``cut_row``'s close on scrambled (its open kept).

    Prices move by one factor per bar (and ``cut_row``'s close within 3% of its open), so the
    bars stay valid and pass the validation gate on their way into the backtest's store."""
    rng = np.random.default_rng(seed)
    values = {name: panel.to_numpy().copy() for name, panel in market.panels.items()}
    after = slice(cut_row + 1, None)
    factor = rng.uniform(0.9, 1.1, values["close"][after].shape)
    for name in ("open", "high", "low", "close"):
        values[name][after] *= factor
    values["volume"][cut_row:] *= rng.uniform(0.5, 1.5, values["volume"][cut_row:].shape)
    row = values["open"][cut_row]
    values["close"][cut_row] = row * rng.uniform(0.97, 1.03, row.shape)
    values["high"][cut_row] = np.maximum(values["high"][cut_row], values["close"][cut_row])
    values["low"][cut_row] = np.minimum(values["low"][cut_row], values["close"][cut_row])
    panels = {
        name: pd.DataFrame(values[name], panel.index, panel.columns)
        for name, panel in market.panels.items()
    }
    return MarketData(panels)


@pytest.mark.slow
def test_point_in_time_results_before_t_do_not_change_when_later_data_does(
    market, plain_settings
) -> None:
    """Truncation: scramble everything known only after T's open; nothing decided by then moves.

    The trades of session T are decided on the close before T and fill at T's open, so they
    must not change either: a strategy peeking at T's close would fail here.
    """
    config = _config(market, "ensemble")  # momentum, mean reversion and a fitted IPCA
    base = run(config, market, plain_settings)
    traded = sorted(set(base.trades.session_date))
    cut = traded[len(traded) // 2]  # a session with trades, mid-way out of sample
    altered = run(config, _altered_from(market, market.sessions.index(cut), 9), plain_settings)
    before = base.daily.index < cut
    pd.testing.assert_frame_equal(base.daily[before], altered.daily[before])
    pd.testing.assert_frame_equal(
        base.trades[base.trades.session_date <= cut],
        altered.trades[altered.trades.session_date <= cut],
    )
    # ... and the scrambling did change what came after, so the test can fail.
    assert not np.allclose(base.daily["equity"][~before], altered.daily["equity"][~before])


@pytest.fixture(scope="module")
def costly(market, warehouse_url):
    """One momentum backtest through the live path with every cost switched on (shared)."""
    settings = Settings(_env_file=None, max_weight=0.1, initial_capital=1_000_000.0)
    return run(_config(market), market, settings, costs=COSTLY)


COSTLY = CostModel(commission_per_share=0.01, spread_bps=10, slippage_bps=5, impact_coefficient=0.1)


@pytest.mark.slow
def test_cash_and_trades_account_for_every_dollar(market, costly) -> None:
    result = costly
    daily, trades = result.daily, result.trades
    # The trades' realized and open P&L add up to the change in equity (no carry charged).
    pnl = montecarlo.trade_pnl(trades, market.close.loc[: daily.index[-1]])
    assert pnl.sum() == pytest.approx(daily["equity"].iloc[-1] - 1_000_000.0, rel=1e-9)
    # Cash is the initial capital less what the trades cost.
    signed = np.where(trades.side == "buy", 1, -1) * trades.qty * trades.price
    assert daily["cash"].iloc[-1] == pytest.approx(
        1_000_000.0 - signed.sum() - trades.commission.sum()
    )
    assert (daily["gross_exposure"] <= 1 + 1e-9).all()
    # Long-only never borrows: the cash buffer absorbs the costs and the opening gaps.
    assert (daily["cash"] >= 0).all() and (daily["short_exposure"] == 0).all()
    assert len(result.folds) == 3 and daily.index[0] == result.folds[0].test_start
    # Every session after the first rebalance holds the book the live path left it.
    assert result.trades.session_date.min() == daily.index[0]


@pytest.mark.slow
def test_costs_lower_equity_by_what_the_trades_paid(market, plain_settings, costly) -> None:
    free = run(
        _config(market),
        market,
        plain_settings,
        costs=CostModel(slippage_bps=0, impact_coefficient=0),
    )
    assert free.trades["cost"].sum() == 0.0
    assert costly.daily["equity"].iloc[-1] < free.daily["equity"].iloc[-1]
    first = costly.trades.iloc[0]
    assert first.commission == pytest.approx(0.01 * first.qty)
    # A buy fills above the open by half the spread, the slippage and the impact.
    buys = costly.trades[costly.trades.side == "buy"]
    assert (buys.price > buys.reference * (1 + 0.001)).all()


def test_borrow_and_margin_are_charged_per_session() -> None:
    costs = CostModel(borrow_rate=0.0252, margin_rate=0.0504)
    assert costs.carry(short_notional=-100_000, cash=-50_000) == pytest.approx(10 + 10)
    assert costs.fill_price("sell", 100.0, 10_000, 1_000_000) == pytest.approx(
        100 * (1 - 0.0005 - 0.1 * 0.01)
    )


@pytest.mark.slow
def test_a_blocked_plan_trades_nothing_and_says_why(market, plain_settings) -> None:
    tight = plain_settings.model_copy(update={"max_orders_per_run": 1})
    result = run(_config(market), market, tight)
    assert result.trades.empty
    assert result.events and "MAX_ORDERS_PER_RUN" in str(result.events[0]["reason"])
    assert (result.daily["equity"] == 1_000_000.0).all()


@pytest.mark.slow
def test_a_drawdown_past_its_limit_halts_trading_before_planning(market, plain_settings) -> None:
    """The live circuit breaker stops the backtest's rebalances too, and only while the
    realized drawdown is past MAX_DRAWDOWN."""
    tight = plain_settings.model_copy(update={"max_drawdown": 0.002})
    result = run(_config(market), market, tight)
    halted = [
        market.sessions[market.sessions.index(e["session_date"]) + 1]  # the session not traded
        for e in result.events
        if str(e["reason"]).startswith("circuit breaker: drawdown")
    ]
    assert halted, "the momentum book never fell 0.2% from its peak: choose a tighter limit"
    assert not set(result.trades.session_date) & set(halted)
    assert not result.trades.empty  # it traded before the drawdown
    equity = result.daily["equity"]
    before = pd.Series([1_000_000.0, *equity.to_numpy()[:-1]], index=equity.index)
    drawdown = 1 - before / before.cummax()  # at the close before each session
    assert (drawdown.loc[halted] > 0.002).all()
