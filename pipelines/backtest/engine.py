"""The walk-forward backtest: the live money path replayed session by session.

For each fold (:mod:`pipelines.backtest.splits`) a learning strategy is fitted on rows known at
the fold's start; then every out-of-sample session D runs, on a throwaway copy of the
warehouse's schema (:mod:`pipelines.backtest.sandbox`) with the simulated broker as the venue
and a :class:`pipelines.clock.SimClock` at D's pre-market, exactly what the live pre-market
rebalance runs (:func:`pipelines.session.rebalance_session`):

1. *reconcile*: the simulated broker fills the orders of earlier sessions whose bars exist
   (market-on-open, priced by the one cost model :class:`pipelines.execution.costs.CostModel`:
   half spread, slippage, impact in proportion to the 21-session average volume, commission);
2. *predict* at the close of the session before D (``as_of``) from a view of the data that ends
   at ``as_of`` (:meth:`MarketData.as_of`); the strategy's expected returns go to the store's
   ``predictions`` like the champion's do live;
3. *plan* with the live planner (current holdings from the broker feed the turnover limit and
   penalty and the minimum trade; the risk model the settings choose), *gate* with the live
   risk gate (kill switch, data quality, daily loss, drawdown, concentration, gross, VaR,
   order notional and count; a breach or an infeasible plan trades nothing that session and is
   recorded), *submit* through the live order ledger, *reconcile* — which fills at D's open;
4. *mark* to market at D's close (a symbol without a bar keeps its last close).

The full step runs every ``rebalance_every`` sessions; on the sessions between it runs when
the book has drifted more than ``drift_threshold`` (half the L1 distance between held weights
and the last plan's targets); otherwise only the reconciliation runs. Equity is USD; returns
are daily simple. Bars enter the store through ingest and its validation gate (or, for
warehouse data, are copied with the validation runs that admitted them), so the gate's
data-quality check reads real decisions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.backtest import splits
from pipelines.backtest.data import BacktestInputError, FrameSource, MarketData
from pipelines.backtest.sandbox import throwaway_store
from pipelines.backtest.strategies import Strategy, TrainingSet, get_strategy
from pipelines.clock import SimClock, premarket
from pipelines.config import Settings
from pipelines.errors import OptimizationError, RiskLimitBreached
from pipelines.execution.costs import CostModel
from pipelines.execution.reconcile import reconcile
from pipelines.features import characteristics
from pipelines.portfolio.risk_model import WINDOW_SESSIONS
from pipelines.runtime import Ports, backtest_ports
from pipelines.session import Predicted, Predictor, rebalance_session
from pipelines.warehouse import accounts, orders, plans, predictions
from pipelines.warehouse.bars import frozen_closes

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
    timings: dict[str, float]  # seconds per stage (validate, features, load, train, execute, …)
    strategy_params: dict[str, object]
    features: pd.DataFrame | None = None  # the characteristics the strategies saw
    #: seconds per part of the live step (reconcile, predict, plan, gate, submit, blocked,
    #: drift, mark), apart from ``timings``: they overlap its ``execute``
    steps: dict[str, float] = field(default_factory=dict)


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
    source: sa.Engine | None = None,
    run_id: str = "backtest",
) -> BacktestResult:
    """Walk forward over ``data`` restricted to ``[config.start, config.end]``.

    ``source``: the warehouse ``data`` was read from (its bars and validation runs are copied
    into the backtest's store); None: ``data`` is ingested through the validation gate.
    """
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
    with throwaway_store(settings) as store:
        clock = time.perf_counter()
        first_as_of = data.sessions[data.sessions.index(folds[0].test_start) - 1]
        wants_features = strategy.learns and settings.risk_model != "ledoit_wolf"
        load_store(store, data, settings, source, run_id, first_as_of if wants_features else None)
        timings["load"] = time.perf_counter() - clock
        with frozen_closes(store):  # nothing writes bars from here on
            ports = backtest_ports(store, settings, SimClock(premarket(data.sessions[0])), costs)
            replay = _Replay(ports, data, config, run_id)
            total = sum(f.test_sessions for f in folds)
            done = 0
            fit_metrics: list[dict[str, float]] = []
            for number, fold in enumerate(folds):
                if strategy.learns:
                    clock = time.perf_counter()
                    fit_metrics.append(strategy.fit(_training_set(data, fold)))
                    timings["train"] = timings.get("train", 0.0) + time.perf_counter() - clock
                model = (f"backtest-{config.strategy}", f"fold-{number}")
                predict = _strategy_predictor(strategy, data, model, replay, timings)
                for day in data.close.loc[fold.test_start : fold.test_end].index:
                    replay.step(predict, day, force=day == fold.test_start, timings=timings)
                    done += 1
                    progress(done, total)
            clock = time.perf_counter()
            result = replay.result(folds, fit_metrics, timings, strategy.params())
            result.features = features
            timings["collect"] = time.perf_counter() - clock
    return result


def _strategy_predictor(
    strategy: Strategy,
    data: MarketData,
    model: tuple[str, str],
    replay: _Replay,
    timings: dict[str, float],
) -> Predictor:
    """The step's predictor for a strategy under test: expected returns at ``as_of`` from the
    data known then, for symbols with features and a full risk window (the gate blocks weight
    on anything else), written to the store's ``predictions`` as the champion's are live."""

    def predict(store: sa.Engine, as_of: date, run_id: str) -> Predicted:
        clock = time.perf_counter()
        expected = strategy.expected_returns(data.as_of(as_of), as_of).dropna()
        ok = replay.eligible.loc[as_of]
        expected = expected[[bool(ok.get(s, False)) for s in expected.index]]
        _add(timings, "predict", clock)  # the strategy alone (inside steps["predict"])
        replay.signals.append(
            pd.DataFrame(
                {"session_date": as_of, "symbol": expected.index, "expected": expected.values}
            )
        )
        written = _write_predictions(store, model, as_of, expected, run_id)
        return replace(written, factor_model=strategy.factor_model)

    return predict


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


#: The live step's parts (``rebalance_session``'s ``on_step`` names) → ``steps`` keys. The
#: money-path guard runs between predict and optimize, so it counts in ``plan``.
STEPS = {
    "reconcile before": "reconcile",
    "predict": "predict",
    "optimize": "plan",
    "risk gate": "gate",
    "submit": "submit",
    "reconcile after": "reconcile",
}


def _add(timings: dict[str, float], key: str, since: float) -> float:
    """Add the seconds from ``since`` to now to ``timings[key]``; return now."""
    now = time.perf_counter()
    timings[key] = timings.get(key, 0.0) + now - since
    return now


class _Replay:
    """The driver: moves the clock, calls the live step, marks the broker's book."""

    def __init__(
        self,
        ports: Ports,
        data: MarketData,
        config: BacktestConfig,
        run_id: str,
    ) -> None:
        self.store, self.settings, self.broker = ports.store, ports.settings, ports.broker
        self.data, self.config, self.run_id = data, config, run_id
        self.clock = ports.clock
        self.marks = data.close.ffill()  # a missing bar keeps its last close
        self.row = {d: i for i, d in enumerate(data.sessions)}
        self.eligible = _eligible(data.close, config.risk_window)
        self.since_rebalance = 0
        self.daily: list[dict[str, object]] = []
        self.weights: list[tuple[date, str, float]] = []
        self.signals: list[pd.DataFrame] = []
        self.events: list[dict[str, object]] = []
        self.steps: dict[str, float] = {}
        self.market = data.close.pct_change(fill_method=None).mean(axis=1)

    def book(self, day: date) -> tuple[float, float, pd.Series]:
        """The broker's book at ``day``'s close: equity and cash (USD), the positions' values."""
        account = self.broker.get_account_snapshot()
        values = pd.Series({s: float(q) for s, q in account.positions.items()}, dtype=float)
        values = values * self.marks.loc[day].reindex(values.index)
        return account.cash + float(values.sum()), account.cash, values

    def step(
        self,
        predict: Predictor,
        day: date,
        force: bool,
        timings: dict[str, float],
    ) -> None:
        as_of = self.data.sessions[self.row[day] - 1]
        self.clock.advance_to(premarket(day))  # type: ignore[attr-defined]
        clock = time.perf_counter()
        start_equity, _, start_values = self.book(as_of)
        rebalance = force or self.since_rebalance >= self.config.rebalance_every
        drift = 0.0 if rebalance else self._drift(as_of, start_equity, start_values)
        if drift > self.config.drift_threshold:
            rebalance = True
        _add(self.steps, "drift", clock)
        if rebalance:
            self._rebalance(predict, day, as_of)
            self.since_rebalance = 0
        # Between rebalances nothing is due: each session's orders fill at its own open in the
        # step's closing reconciliation (the bar is in the store); a lapsed one (no bar that
        # session) stays open and the next step's reconciliation sees it.
        self.since_rebalance += 1
        clock = _add(timings, "execute", clock)
        self._mark(day, start_equity, rebalance)
        _add(self.steps, "mark", clock)

    def _rebalance(self, predict: Predictor, day: date, as_of: date) -> None:
        since = [time.perf_counter()]

        def on_step(name: str) -> None:  # the live step reports each part as it ends
            since[0] = _add(self.steps, STEPS[name], since[0])

        try:
            rebalance_session(
                self.store, self.settings, self.broker, day, self.run_id, predict, on_step
            )
        except (RiskLimitBreached, OptimizationError) as exc:  # fail closed: nothing traded
            since[0] = _add(self.steps, "blocked", since[0])
            self.events.append({"session_date": as_of, "event": "blocked", "reason": str(exc)})
            reconcile(self.store, self.broker, self.settings)  # earlier orders still fill
            _add(self.steps, "reconcile", since[0])

    def _drift(self, as_of: date, equity: float, values: pd.Series) -> float:
        """Half the L1 distance between the held weights and the targets the book was last
        traded to."""
        plan = plans.last_submitted(self.store, self.settings.strategy, as_of)
        if plan is None or equity <= 0:
            return 0.0
        targets = plans.target_weights(self.store, plan)
        current = values / equity
        names = targets.index.union(current.index)
        gap = targets.reindex(names, fill_value=0.0) - current.reindex(names, fill_value=0.0)
        return float(gap.abs().sum() / 2)

    def _mark(self, day: date, start_equity: float, rebalanced: bool) -> None:
        equity, cash, values = self.book(day)
        values = values[values != 0]
        self.weights.extend((day, s, float(v / equity)) for s, v in values.items())
        fills = _fills(self.store, day, day)
        traded = float((fills["qty"] * fills["reference"]).sum()) if len(fills) else 0.0
        paid = float(fills["cost"].sum()) if len(fills) else 0.0
        self.daily.append(
            {
                "session_date": day,
                "equity": equity,
                "cash": cash,
                "return": equity / start_equity - 1,
                "benchmark_return": float(np.nan_to_num(self.market.loc[day])),
                "gross_exposure": float(values.abs().sum() / equity),
                "net_exposure": float(values.sum() / equity),
                "long_exposure": float(values[values > 0].sum() / equity),
                "short_exposure": float(-values[values < 0].sum() / equity),
                "turnover": traded / start_equity,
                "costs": paid,
                "positions": len(values),
                "rebalanced": rebalanced,
            }
        )

    def result(
        self,
        folds: list[splits.Fold],
        fit_metrics: list[dict[str, float]],
        timings: dict[str, float],
        strategy_params: dict[str, object],
    ) -> BacktestResult:
        daily = pd.DataFrame(self.daily).set_index("session_date")
        weights = pd.DataFrame(self.weights, columns=["session_date", "symbol", "weight"])
        trades = _fills(self.store, daily.index[0], daily.index[-1])
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
            steps=self.steps,
        )


TRADE_COLUMNS = [
    "session_date", "symbol", "side", "qty", "price", "reference", "commission", "cost",
]  # fmt: skip


def _fills(store: sa.Engine, start: date, end: date) -> pd.DataFrame:
    """The simulated broker's fills of sessions ``[start, end]``, with the open they priced
    against (``reference``) and what they paid over it (``cost``, USD)."""
    rows = orders.simulated_fills(store, start, end)
    trades = pd.DataFrame([tuple(r) for r in rows], columns=TRADE_COLUMNS[:-1])
    trades["qty"] = trades["qty"].astype(float)
    trades["cost"] = (trades["price"] - trades["reference"]).abs() * trades["qty"] + trades[
        "commission"
    ]
    return trades[TRADE_COLUMNS]


def _write_predictions(
    store: sa.Engine, model: tuple[str, str], as_of: date, expected: pd.Series, run_id: str
) -> Predicted:
    name, version = model
    rows = predictions.write(store, name, version, as_of, expected, "backtest", run_id)
    return Predicted(name, version, rows)


def load_store(
    store: sa.Engine,
    data: MarketData,
    settings: Settings,
    source: sa.Engine | None,
    run_id: str,
    features_from: date | None = None,
) -> None:
    """Bars into the backtest's store: copied with their validation runs from ``source`` (the
    warehouse they passed the gate into), or ingested through the gate from ``data``; and the
    features of the sessions from ``features_from`` on, when given (the first close a plan is
    made on: the IPCA risk model reads that close's characteristics from the store)."""
    first, last = data.sessions[0], data.sessions[-1]
    if source is None:
        from pipelines.ingest import ingest

        ingest(
            store,
            FrameSource(data),
            first,
            last,
            data.symbols,
            run_id,
            settings.max_quarantine_fraction,
            corporate_actions=pd.DataFrame(columns=["symbol", "ex_date", "kind", "value"]),
        )
    else:
        from pipelines.backtest.repository import copy_market

        copy_market(source, store, first, last, data.symbols)
    if features_from is not None:
        from pipelines.features.store import build_features

        build_features(store, start=features_from, run_id=run_id)


@dataclass(frozen=True)
class Replayed:
    """What a replay left in its store: the ledger, the broker's book and the equity curve."""

    orders: pd.DataFrame  # client_order_id, symbol, side, qty, status, filled_qty
    fills: pd.DataFrame  # fill_id, client_order_id, symbol, side, qty, price, commission
    positions: pd.DataFrame  # symbol, qty
    daily: pd.DataFrame  # index session_date: equity, cash, ...
    events: list[dict[str, object]]


def replay_sessions(
    settings: Settings,
    source: sa.Engine,
    sessions: list[date],
    predict: Predictor,
    symbols: list[str],
    history_start: date,
    run_id: str = "replay",
    costs: CostModel | None = None,
) -> Replayed:
    """The backtest's driver over ``sessions``, a full step every session, with ``predict``
    (e.g. :func:`pipelines.session.champion_predictor`): the bars of ``symbols`` from
    ``history_start`` to the last session are copied from ``source`` with their validation
    runs, and the features are rebuilt in the store. The equivalence test's backtest side."""
    data = MarketData.from_warehouse(source, history_start, sessions[-1], symbols)
    config = BacktestConfig("replay", sessions[0], sessions[-1], rebalance_every=1)
    with throwaway_store(settings) as store:
        load_store(store, data, settings, source, run_id, features_from=data.sessions[0])
        ports = backtest_ports(store, settings, SimClock(premarket(sessions[0])), costs)
        replay = _Replay(ports, data, config, run_id)
        with frozen_closes(store):
            for day in sessions:
                replay.step(predict, day, force=True, timings={})
        return Replayed(*ledger_snapshot(store), pd.DataFrame(replay.daily).set_index(
            "session_date"), replay.events)  # fmt: skip


def ledger_snapshot(store: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(orders, fills, positions)`` of a store, sorted: what the equivalence compares."""
    with store.connect() as conn:
        return orders.orders_frame(conn), orders.fills_frame(conn), accounts.positions_frame(conn)
