"""The pipeline's positive and null controls: can it find signal when there is some, and
does it find none when there is none?

Two synthetic markets from :func:`pipelines.backtest.synthetic.planted_market` with the same
draws: *planted*, whose expected returns are driven by two characteristics, and *null*, with
no signal. Each goes through the real path: bars ingested through the validation gate into a
throwaway store, characteristics computed, the strategy refitted walk-forward, and every
out-of-sample session traded by the live step (:mod:`pipelines.backtest.engine`) with the
simulated broker and its costs. The *oracle* (:class:`PlantedOracle`), which knows the
planted premia, runs the same way on the planted market and bounds what can be earned there.

The controls study the signal, not the account's limits: the gate runs every check, but with
:data:`SIGNAL_STUDY_LIMITS` lifted — the drawdown limit (measured from the realized peak and
never reset, it refuses every plan after the first 15% fall) and the per-order notional cap
(a fat-finger guard in USD: once the book has grown, the planner caps each trade by it, and
the book reaches its targets only over several sessions). Left in place, they measure when
the limits bind, which says nothing about whether there is signal.

The verdict: on the planted market the learning strategy's annualized Sharpe after costs is
positive and at least :data:`MIN_ORACLE_FRACTION` of the oracle's; on the null market its
deflated Sharpe ratio (against the configurations tried on it: one) is below
:data:`SIGNIFICANCE`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.backtest import metrics
from pipelines.backtest.data import MarketData
from pipelines.backtest.engine import BacktestConfig, run
from pipelines.backtest.splits import WalkForward
from pipelines.backtest.synthetic import PLANTED_PREMIA, planted_market
from pipelines.config import Settings

#: Settings the controls override (see the module docstring): limits on the account's path.
SIGNAL_STUDY_LIMITS = {"max_drawdown": 1.0, "max_order_notional": 1e12}
MIN_ORACLE_FRACTION = 0.5  # the learner's Sharpe on the planted market, as a share of the oracle's
SIGNIFICANCE = 0.95  # a deflated Sharpe ratio at or above this would be a discovery


@dataclass(frozen=True)
class ControlRun:
    market: str  # "planted" or "null"
    strategy: str
    metrics: dict[str, float]  # pipelines.backtest.metrics.summary of its out-of-sample days
    seconds: float


@dataclass(frozen=True)
class ControlDesign:
    n_assets: int = 500
    n_years: float = 10.0
    seed: int = 0
    strategy: str = "ml_ipca"
    walk_forward: WalkForward = WalkForward(n_windows=12, retrain_every=21)
    rebalance_every: int = 5


ORACLE = "planted_oracle"


@dataclass(frozen=True)
class Controls:
    learner: ControlRun  # the strategy under test on the planted market
    oracle: ControlRun  # the oracle on the planted market
    null: ControlRun  # the strategy under test on the null market


def run_controls(
    design: ControlDesign,
    settings: Settings,
    report: Callable[[ControlRun], None] = lambda run: None,
) -> Controls:
    """The learner on both markets and the oracle on the planted one; ``report`` sees each
    run as it ends."""
    settings = settings.model_copy(update=SIGNAL_STUDY_LIMITS)
    planted = planted_market(design.n_assets, design.n_years, seed=design.seed)
    null = planted_market(design.n_assets, design.n_years, premia={}, seed=design.seed)

    def backtest(market: str, data: MarketData, strategy: str) -> ControlRun:
        config = BacktestConfig(
            strategy,
            data.sessions[0],
            data.sessions[-1],
            design.walk_forward,
            rebalance_every=design.rebalance_every,
        )
        start = time.perf_counter()
        result = run(config, data, settings, run_id=f"control-{market}-{strategy}")
        measured = metrics.summary(result.daily, result.signals)
        done = ControlRun(market, strategy, measured, time.perf_counter() - start)
        report(done)
        return done

    return Controls(
        learner=backtest("planted", planted, design.strategy),
        oracle=backtest("planted", planted, ORACLE),
        null=backtest("null", null, design.strategy),
    )


def verdict(controls: Controls) -> list[str]:
    """What failed, one sentence each; empty when both controls pass."""
    learner = controls.learner.metrics["sharpe"]
    oracle = controls.oracle.metrics["sharpe"]
    null_dsr = controls.null.metrics["dsr"]
    problems = []
    if not learner > 0:
        problems.append(f"planted market: the learner's Sharpe is {learner:.2f}, not > 0")
    if not learner >= MIN_ORACLE_FRACTION * oracle:
        problems.append(
            f"planted market: the learner's Sharpe {learner:.2f} is below "
            f"{MIN_ORACLE_FRACTION:.0%} of the oracle's {oracle:.2f}"
        )
    if not null_dsr < SIGNIFICANCE:
        problems.append(
            f"null market: deflated Sharpe {null_dsr:.3f} is significant "
            f"(≥ {SIGNIFICANCE}) where there is no signal"
        )
    return problems


__all__ = ["PLANTED_PREMIA", "ControlDesign", "ControlRun", "Controls", "run_controls", "verdict"]
