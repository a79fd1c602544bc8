"""The walk-forward engine: the live path replayed in memory, the clock moved session by session.

For each fold (:mod:`pipelines.backtest.splits`) a learning strategy is fitted on rows known at
the fold's start; then for each out-of-sample session D, exactly as the live pre-market
rebalance does:

1. *predict* at the close of the session before D (``as_of``) from a view of the data that ends
   at ``as_of`` (:meth:`MarketData.as_of`; nothing later exists in it);
2. *optimize* with the live planner's :func:`pipelines.portfolio.planner.weights_from`
   (Ledoit–Wolf risk on the trailing window, the cvxpy mean-variance optimizer);
3. *size* orders with the live :func:`pipelines.execution.orders.size_orders` (whole shares at
   ``as_of``'s closes, minimum notional) and pass the live risk limits
   (:func:`pipelines.risk.gate.limit_breaches`): a breach or an optimizer failure trades nothing
   that session (fail closed) and is recorded;
4. *fill* market-on-open at D's open through :class:`pipelines.execution.costs.CostModel`
   (half spread, slippage, impact proportional to participation in the 21-session average
   volume, commission); charge borrow on shorts and margin interest on negative cash;
5. *mark* to market at D's close (a symbol without a bar keeps its last close).

The optimizer runs every ``rebalance_every`` sessions; on the sessions between, a daily check
re-trades to the last targets when the book has drifted more than ``drift_threshold`` (half
the L1 distance between held and target weights). Equity is USD; returns are daily simple.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from pipelines.backtest import splits
from pipelines.backtest.data import BacktestInputError, MarketData
from pipelines.backtest.strategies import Strategy, TrainingSet, get_strategy
from pipelines.config import Settings
from pipelines.errors import OptimizationError
from pipelines.execution.costs import CostModel
from pipelines.execution.orders import size_orders
from pipelines.features import characteristics
from pipelines.portfolio.planner import weights_from
from pipelines.portfolio.risk_model import WINDOW_SESSIONS, returns_from_closes
from pipelines.risk.gate import RiskReport, limit_breaches

log = logging.getLogger(__name__)
ADV_WINDOW = 21


@dataclass(frozen=True)
class BacktestConfig:
    strategy: str
    start: date
    end: date
    walk_forward: splits.WalkForward = field(default_factory=splits.WalkForward)
    rebalance_every: int = 5  # sessions between optimizations
    drift_threshold: float = 0.10  # half-L1 drift that triggers a re-trade to targets
    risk_window: int = WINDOW_SESSIONS
    min_train_sessions: int = 20

    def params(self) -> dict[str, object]:
        wf = self.walk_forward
        return {
            "strategy": self.strategy,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "n_windows": wf.n_windows,
            "oos_ratio": wf.oos_ratio,
            "scheme": wf.scheme,
            "retrain_every": wf.retrain_every,
            "purge": wf.purge,
            "embargo": wf.embargo,
            "rebalance_every": self.rebalance_every,
            "drift_threshold": self.drift_threshold,
            "risk_window": self.risk_window,
        }


@dataclass
class BacktestResult:
    config: BacktestConfig
    daily: pd.DataFrame  # index session_date: equity, cash, return, benchmark_return, ...
    weights: pd.DataFrame  # session_date, symbol, weight (at the close)
    trades: pd.DataFrame  # session_date, symbol, side, qty, price, reference, commission, cost
    signals: pd.DataFrame  # session_date, symbol, expected, realized (next-session return)
    folds: list[splits.Fold]
    fit_metrics: list[dict[str, float]]
    events: list[dict[str, object]]  # blocked rebalances, with the reason
    timings: dict[str, float]
    strategy_params: dict[str, object]
    features: pd.DataFrame | None = None  # the characteristics the strategies saw


def validate(config: BacktestConfig, data: MarketData) -> tuple[Strategy, list[splits.Fold]]:
    """Every check that can fail before work starts; raises :class:`BacktestInputError`."""
    strategy = get_strategy(config.strategy)
    if config.start >= config.end:
        raise BacktestInputError(f"start {config.start} is not before end {config.end}")
    if data.close.empty:
        raise BacktestInputError("no market data to backtest on")
    first, last = data.sessions[0], data.sessions[-1]
    if config.start < first or config.end > last:
        raise BacktestInputError(
            f"{config.start}..{config.end} is outside the data ({first}..{last}): choose dates "
            "inside it or load more history"
        )
    if config.rebalance_every < 1:
        raise BacktestInputError(f"rebalance_every must be ≥ 1, got {config.rebalance_every}")
    eligible = _eligible(data.close, config.risk_window)
    any_eligible = eligible.any(axis=1).to_numpy()
    if not any_eligible.any():
        raise BacktestInputError(
            f"no symbol has {characteristics.MIN_HISTORY} sessions of history (and "
            f"{config.risk_window} for the risk model) in {config.start}..{config.end}: widen "
            "the date range"
        )
    warm = int(any_eligible.argmax())
    folds = splits.folds(data.sessions[warm:], config.walk_forward, config.min_train_sessions)
    row = {d: i for i, d in enumerate(data.sessions)}
    # Every out-of-sample session trades on the close before it: someone must be eligible then.
    empty = [
        d
        for f in folds
        for d in data.sessions[row[f.test_start] : row[f.test_end] + 1]
        if not any_eligible[row[d] - 1]
    ]
    if empty:
        raise BacktestInputError(
            f"the universe is empty on {len(empty)} out-of-sample sessions from {empty[0]} "
            "(no symbol has a close and enough history): end the backtest earlier or widen "
            "the universe"
        )
    if strategy.learns:  # the model code refuses small training sets: say so up front
        from pipelines.backtest.strategies.ml import MIN_TRAINING_ROWS

        history = data.close.notna().cumsum()
        rows = (data.close.notna() & (history >= characteristics.MIN_HISTORY)).sum(axis=1)
        short = [
            (f, int(rows.loc[f.train_start : f.train_end].sum()))
            for f in folds
            if rows.loc[f.train_start : f.train_end].sum() < MIN_TRAINING_ROWS
        ]
        if short:
            fold, count = short[0]
            raise BacktestInputError(
                f"{config.strategy} would train on {count} feature rows for the window "
                f"trading from {fold.test_start} (need {MIN_TRAINING_ROWS}): widen the "
                "universe, lengthen the date range or use fewer windows"
            )
    return strategy, folds


def _eligible(close: pd.DataFrame, risk_window: int) -> pd.DataFrame:
    """Symbols with features and a full risk window at each session's close."""
    history = close.notna().cumsum()
    need = max(characteristics.MIN_HISTORY, risk_window + 1)
    return close.notna() & (history >= need)


def run(
    config: BacktestConfig,
    data: MarketData,
    settings: Settings,
    costs: CostModel | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> BacktestResult:
    """Walk forward over ``data`` restricted to ``[config.start, config.end]``."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    data = data.between(config.start, config.end)
    strategy, folds = validate(config, data)
    costs = costs or CostModel.from_settings(settings)
    timings["validate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    features = characteristics.compute(data.to_bars())
    data = data.with_features(features)
    timings["features"] = time.perf_counter() - clock
    book = _Book(data, settings, costs, config)
    total = sum(f.test_sessions for f in folds)
    done = 0
    fit_metrics: list[dict[str, float]] = []
    for fold in folds:
        if strategy.learns:
            clock = time.perf_counter()
            fit_metrics.append(strategy.fit(_training_set(data, fold)))
            timings["train"] = timings.get("train", 0.0) + time.perf_counter() - clock
        for day in data.close.loc[fold.test_start : fold.test_end].index:
            book.step(strategy, day, force=day == fold.test_start, timings=timings)
            done += 1
            progress(done, total)
    clock = time.perf_counter()
    result = book.result(folds, fit_metrics, timings, strategy.params())
    result.features = features
    timings["collect"] = time.perf_counter() - clock
    return result


def _training_set(data: MarketData, fold: splits.Fold) -> TrainingSet:
    """Rows dated ``[train_start, train_end]`` and labels known at ``train_end``'s next close."""
    sessions = data.sessions
    known = sessions[sessions.index(fold.train_end) + 1]  # the label of train_end closes here
    view = data.as_of(known)
    assert view.features is not None
    dates = view.features.index.get_level_values("session_date")
    rows = view.features[(dates >= fold.train_start) & (dates <= fold.train_end)]
    close = view.close
    forward = (close.shift(-1) / close - 1).stack(future_stack=True)
    forward.index = forward.index.set_names(["session_date", "symbol"])
    return TrainingSet(rows, forward.reindex(rows.index))


class _Book:
    """Cash and whole-share positions, advanced one session at a time."""

    def __init__(
        self, data: MarketData, settings: Settings, costs: CostModel, config: BacktestConfig
    ) -> None:
        self.data, self.settings, self.costs, self.config = data, settings, costs, config
        self.symbols = data.symbols
        self.position = {s: i for i, s in enumerate(self.symbols)}
        self.shares = np.zeros(len(self.symbols))
        self.cash = float(settings.initial_capital)
        self.open = data.panels["open"].to_numpy()
        self.close = data.close.to_numpy()
        self.marks = data.close.ffill().to_numpy()  # a missing bar keeps its last close
        self.adv = data.panels["volume"].rolling(ADV_WINDOW, min_periods=1).mean().to_numpy()
        self.row = {d: i for i, d in enumerate(data.sessions)}
        self.eligible = _eligible(data.close, config.risk_window).to_numpy()
        self.targets: dict[str, float] = {}
        self.since_rebalance = 0
        self.daily: list[dict[str, object]] = []
        self.weights: list[tuple[date, str, float]] = []
        self.trades: list[tuple] = []
        self.signals: list[pd.DataFrame] = []
        self.events: list[dict[str, object]] = []
        self.market = data.close.pct_change(fill_method=None).mean(axis=1).to_numpy()

    def equity_at(self, row: int) -> float:
        held = self.shares != 0
        return self.cash + float(np.dot(self.shares[held], self.marks[row, held]))

    def step(self, strategy: Strategy, day: date, force: bool, timings: dict[str, float]) -> None:
        row = self.row[day]
        prev = row - 1
        as_of = self.data.sessions[prev]
        start_equity = self.equity_at(prev)
        orders: list[tuple[str, str, int]] = []
        rebalance = force or self.since_rebalance >= self.config.rebalance_every
        clock = time.perf_counter()
        if rebalance:
            orders = self._rebalance(strategy, as_of, prev, start_equity, timings)
            self.since_rebalance = 0
        elif self.targets and self._drift(prev, start_equity) > self.config.drift_threshold:
            orders = self._orders(self.targets, prev, start_equity, as_of, "drift")
        self.since_rebalance += 1
        clock = time.perf_counter()
        traded, paid = self._fill(orders, day, row, prev)
        shorts = self.shares < 0  # (0 × a missing mark would be NaN)
        short = float(np.dot(self.shares[shorts], self.marks[row, shorts]))
        carry = self.costs.carry(short, self.cash)
        self.cash -= carry
        equity = self.equity_at(row)
        held = np.flatnonzero(self.shares)
        values = self.shares[held] * self.marks[row, held]
        self.weights.extend(
            (day, self.symbols[i], float(v / equity)) for i, v in zip(held, values, strict=True)
        )
        self.daily.append(
            {
                "session_date": day,
                "equity": equity,
                "cash": self.cash,
                "return": equity / start_equity - 1,
                "benchmark_return": float(np.nan_to_num(self.market[row])),
                "gross_exposure": float(np.abs(values).sum() / equity),
                "net_exposure": float(values.sum() / equity),
                "long_exposure": float(values[values > 0].sum() / equity),
                "short_exposure": float(-values[values < 0].sum() / equity),
                "turnover": traded / start_equity,
                "costs": paid + carry,
                "positions": len(held),
                "rebalanced": rebalance,
            }
        )
        timings["execute"] = timings.get("execute", 0.0) + time.perf_counter() - clock

    def _rebalance(
        self, strategy: Strategy, as_of: date, prev: int, equity: float, timings: dict[str, float]
    ) -> list[tuple[str, str, int]]:
        clock = time.perf_counter()
        view = self.data.as_of(as_of)
        expected = strategy.expected_returns(view, as_of).dropna()
        universe = [s for s in expected.index if self.eligible[prev, self.position[s]]]
        timings["predict"] = timings.get("predict", 0.0) + time.perf_counter() - clock
        if not universe:
            self.events.append(
                {"session_date": as_of, "event": "blocked", "reason": "empty universe"}
            )
            return []
        clock = time.perf_counter()
        window = view.close[universe].iloc[-(self.config.risk_window + 1) :]
        returns = returns_from_closes(window, self.config.risk_window)
        expected = expected.reindex(returns.columns)
        self.signals.append(
            pd.DataFrame(
                {"session_date": as_of, "symbol": expected.index, "expected": expected.values}
            )
        )
        try:
            targets = weights_from(expected, returns, self.settings)
        except OptimizationError as exc:
            self.events.append({"session_date": as_of, "event": "blocked", "reason": str(exc)})
            return []
        finally:
            timings["optimize"] = timings.get("optimize", 0.0) + time.perf_counter() - clock
        self.targets = targets.to_dict()
        return self._orders(self.targets, prev, equity, as_of, "rebalance")

    def _orders(
        self, targets: dict[str, float], prev: int, equity: float, as_of: date, why: str
    ) -> list[tuple[str, str, int]]:
        held = {self.symbols[i]: int(self.shares[i]) for i in np.flatnonzero(self.shares)}
        names = set(targets) | set(held)
        prices = {s: float(self.marks[prev, self.position[s]]) for s in names}
        orders = size_orders(targets, held, prices, equity, self.settings.min_order_notional)
        notionals = [q * prices[s] for s, _, q in orders]
        report = RiskReport(
            approved=True,
            max_weight=max(targets.values(), default=0.0),
            gross_exposure=float(sum(abs(w) for w in targets.values())),
            orders=len(orders),
            max_order_notional=max(notionals, default=0.0),
        )
        breaches = limit_breaches(self.settings, report)
        if breaches:  # fail closed: keep the book as it is
            self.events.append(
                {"session_date": as_of, "event": f"blocked {why}", "reason": "; ".join(breaches)}
            )
            return []
        return [(s, side, q) for s, side, q in orders]

    def _drift(self, prev: int, equity: float) -> float:
        target = np.zeros(len(self.symbols))
        for s, w in self.targets.items():
            target[self.position[s]] = w
        current = self.shares * self.marks[prev] / equity
        return float(np.abs(current - target).sum() / 2)

    def _fill(
        self, orders: list[tuple[str, str, int]], day: date, row: int, prev: int
    ) -> tuple[float, float]:
        traded = paid = 0.0
        for symbol, side, qty in orders:
            i = self.position[symbol]
            reference = self.open[row, i]
            if not np.isfinite(reference):  # no bar today: the market-on-open order lapses
                self.events.append({"session_date": day, "event": "unfilled", "reason": symbol})
                continue
            price = self.costs.fill_price(side, reference, qty, self.adv[prev, i])
            commission = self.costs.commission(qty)
            signed = qty if side == "buy" else -qty
            self.shares[i] += signed
            self.cash -= signed * price + commission
            cost = abs(price - reference) * qty + commission
            traded += qty * reference
            paid += cost
            self.trades.append((day, symbol, side, qty, price, reference, commission, cost))
        return traded, paid

    def result(
        self,
        folds: list[splits.Fold],
        fit_metrics: list[dict[str, float]],
        timings: dict[str, float],
        strategy_params: dict[str, object],
    ) -> BacktestResult:
        daily = pd.DataFrame(self.daily).set_index("session_date")
        weights = pd.DataFrame(self.weights, columns=["session_date", "symbol", "weight"])
        trades = pd.DataFrame(
            self.trades,
            columns=[
                "session_date",
                "symbol",
                "side",
                "qty",
                "price",
                "reference",
                "commission",
                "cost",
            ],
        )
        signals = (
            pd.concat(self.signals, ignore_index=True)
            if self.signals
            else pd.DataFrame(columns=["session_date", "symbol", "expected"])
        )
        nxt = (self.data.close.shift(-1) / self.data.close - 1).stack(future_stack=True)
        nxt.index = nxt.index.set_names(["session_date", "symbol"])
        signals["realized"] = nxt.reindex(
            pd.MultiIndex.from_frame(signals[["session_date", "symbol"]])
        ).to_numpy()
        return BacktestResult(
            self.config,
            daily,
            weights,
            trades,
            signals,
            folds,
            fit_metrics,
            self.events,
            timings,
            strategy_params,
        )
