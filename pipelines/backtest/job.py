"""One backtest end to end: data → walk-forward → metrics → Monte Carlo → tearsheet →
warehouse and MLflow. The CLI, the ``backtest`` DAG and the demo call :func:`run_backtest`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from pipelines.backtest import metrics as metrics_module
from pipelines.backtest import montecarlo, report, store
from pipelines.backtest.attribution import ipca_attribution
from pipelines.backtest.data import MarketData
from pipelines.backtest.engine import BacktestConfig, run, validate
from pipelines.backtest.splits import WalkForward
from pipelines.config import Settings
from pipelines.errors import MltradeError
from pipelines.execution.costs import CostModel

log = logging.getLogger(__name__)
LIMITS = (
    "risk_aversion",
    "max_weight",
    "cash_buffer",
    "min_order_notional",
    "max_order_notional",
    "max_orders_per_run",
    "initial_capital",
)


@dataclass(frozen=True)
class BacktestOptions:
    """What a user may set from the CLI or the trigger form (defaults: the seed plan's)."""

    n_windows: int = 12
    oos_ratio: float = 0.3
    scheme: str = "rolling"
    retrain_every: int | None = None
    purge: int = 1
    embargo: int = 0
    rebalance_every: int = 5
    drift_threshold: float = 0.10
    mc_paths: int = 1000
    mc_block: float = 10.0
    seed: int = 0
    mlflow: bool = True

    def config(self, strategy: str, start: date, end: date) -> BacktestConfig:
        plan = WalkForward(
            self.n_windows,
            self.oos_ratio,
            self.scheme,  # type: ignore[arg-type]
            self.retrain_every,
            self.purge,
            self.embargo,
        )
        return BacktestConfig(
            strategy, start, end, plan, self.rebalance_every, self.drift_threshold
        )


def check(
    engine: sa.Engine, strategy: str, start: date, end: date, options: BacktestOptions
) -> MarketData:
    """Load the data and check every input; raises BacktestInputError before any work."""
    data = MarketData.from_warehouse(engine, start, end)
    validate(options.config(strategy, start, end), data)
    return data


def run_backtest(
    engine: sa.Engine,
    settings: Settings,
    strategy: str,
    start: date,
    end: date,
    run_id: str,
    options: BacktestOptions | None = None,
    data: MarketData | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Run, measure, report and store one backtest; return a JSON-able summary."""
    from pipelines.models import registry

    started = time.time()  # the MLflow run spans the backtest's work, not only its logging
    options = options or BacktestOptions()
    config = options.config(strategy, start, end)
    data = data if data is not None else MarketData.from_warehouse(engine, start, end)
    costs = CostModel.from_settings(settings)
    result = run(config, data, settings, costs, progress, source=engine, run_id=run_id)

    params: dict[str, Any] = {
        **config.params(),
        "strategy_params": result.strategy_params,
        "costs": asdict(costs),
        **{name: getattr(settings, name) for name in LIMITS},
        "mc_paths": options.mc_paths,
        "mc_block": options.mc_block,
        "seed": options.seed,
    }
    code = registry.code_version()
    key = store.run_key(params, data.between(start, end), settings, code)
    tried = store.tried_sharpes(engine, start, end, exclude=key)
    per_session = [s / np.sqrt(metrics_module.PERIODS) for s in tried]
    variance = float(np.var(per_session, ddof=1)) if len(per_session) >= 2 else None
    measured = metrics_module.summary(result.daily, result.signals, len(tried) + 1, variance)

    try:
        assert result.features is not None
        parts = ipca_attribution(
            result.weights,
            result.features,
            data.between(start, end).close,
            result.daily["return"],
        )
        measured.update(
            {
                f"attribution_{c}": float(parts[c].mean() * metrics_module.PERIODS)
                for c in parts.columns
            }
        )
    except MltradeError as exc:  # descriptive only: a failed fit must not lose the backtest
        log.warning("attribution not available: %s", exc)

    returns = result.daily["return"].to_numpy()
    mc = montecarlo.daily_returns(returns, options.mc_paths, options.mc_block, options.seed)
    trade_pnl = montecarlo.trade_pnl(result.trades, data.close.loc[: result.daily.index[-1]])
    intervals: dict[str, Any] = {"daily": mc.intervals()}
    if len(trade_pnl) > 1:
        intervals["trades"] = montecarlo.trade_sequences(
            trade_pnl, settings.initial_capital, options.mc_paths, seed=options.seed
        ).intervals()

    folder = settings.home / "reports" / f"backtest-{strategy}-{start}-{end}-{key[:8]}"
    title = f"Backtest: {strategy}, {start} → {end}"
    page = report.write(result, measured, mc, intervals, folder, title, params)
    mlflow_run = None
    if options.mlflow:
        mlflow_run = registry.log_backtest(
            settings,
            f"backtest-{strategy}-{start}-{end}",
            params,
            {
                **measured,
                **{f"mc_{k}_{q}": v for k, ci in intervals["daily"].items() for q, v in ci.items()},
            },
            str(folder),
            {"run_key": key, "strategy": strategy, "run_id": run_id},
            started_at=started,
            ended_at=time.time(),
        )
    store.save(
        engine,
        key,
        result,
        params,
        measured,
        intervals,
        code,
        run_id,
        str(page),
        mlflow_run,
    )
    log.info("backtest %s %s..%s key=%s sharpe=%.3f", strategy, start, end, key, measured["sharpe"])
    return {
        "run_key": key,
        "strategy": strategy,
        "oos_start": result.daily.index[0],
        "oos_end": result.daily.index[-1],
        "report": str(Path(page)),
        "mlflow_run_id": mlflow_run,
        "metrics": measured,
        "targets": metrics_module.against_targets(measured),
        "monte_carlo": intervals,
        "timings": result.timings,
    }
