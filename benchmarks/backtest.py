"""Walk-forward backtest at scale: synthetic daily bars with a planted factor structure.

    .venv/bin/python benchmarks/backtest.py                    # 500 assets × 10 years, ml_ipca
    .venv/bin/python benchmarks/backtest.py --years 2 --strategy ml_xgboost

The whole engine runs as `mltrade backtest` does: features, monthly refits, and each
out-of-sample session the live step replayed on a throwaway PostgreSQL database (reconcile,
predict, plan, gate, submit through the ledger, simulated fills, mark), without the
warehouse writes of the result; the tearsheet is timed separately on the same result. It
prints the seconds per stage, the live step's seconds per part (``result.steps``: what costs what),
the peak RSS, the load average before and after, and two raw limits measured in the same
run: CLARABEL's own solve time for one problem of the run's size (the optimizer can not go
below ``calls × solve time``) and a vectorized replay of the realized weights (the accounting
can not beat one matrix product over the panel). Targets (issue #13): ≤ 300 s for the engine
at 500 × 10 years, against 134 s for the old in-memory engine.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd

from pipelines.backtest import metrics, montecarlo, report
from pipelines.backtest.engine import BacktestConfig, run
from pipelines.backtest.splits import WalkForward
from pipelines.backtest.synthetic import synthetic_market
from pipelines.config import Settings
from pipelines.portfolio.config import OptimizerConfig
from pipelines.portfolio.planner import weights_from
from pipelines.portfolio.risk_model import ledoit_wolf, returns_from_closes


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _optimizer_limit(close, settings: Settings) -> tuple[float, float]:
    """On one problem of the run's size: (our planner call, CLARABEL's own solve time), s.

    Ours is ``weights_from`` (Ledoit–Wolf + cvxpy compile + solve), as the engine calls it;
    the raw limit is the solver's reported solve time on the same problem, compile excluded.
    """
    returns = returns_from_closes(close.iloc[-200:], 120)
    mu = pd.Series(
        np.random.default_rng(0).uniform(-0.001, 0.001, returns.shape[1]), returns.columns
    )
    ours = []
    for _ in range(3):
        t0 = time.perf_counter()
        weights_from(mu, returns, OptimizerConfig.from_settings(settings))
        ours.append(time.perf_counter() - t0)
    risk = ledoit_wolf(returns)
    w = cp.Variable(len(mu))
    variance = cp.sum_squares(risk.loadings @ w) + cp.sum(cp.multiply(risk.specific, cp.square(w)))
    problem = cp.Problem(
        cp.Maximize(mu.to_numpy() @ w - settings.risk_aversion * variance),
        [cp.sum(w) == 1 - settings.cash_buffer, w >= 0, w <= settings.max_weight],
    )
    raw = []
    for _ in range(3):
        problem.solve(solver="CLARABEL")
        raw.append(problem.solver_stats.solve_time)
    return float(np.median(ours)), float(np.median(raw))


def _refusal_kind(reason: str) -> str:
    """Who refused a rebalance: the circuit breaker, the gate (with its first breach's limit)
    or the optimizer."""
    if reason.startswith("circuit breaker"):
        return "circuit breaker"
    if " blocked: " in reason:
        limits = [w for w in reason.split() if w.isupper() and "_" in w]
        return f"gate ({limits[0] if limits else 'other'})"
    return "optimizer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--strategy", default="ml_ipca")
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--retrain-every", type=int, default=21, help="sessions (21: monthly)")
    parser.add_argument("--rebalance-every", type=int, default=5, help="sessions")
    args = parser.parse_args()

    settings = Settings(_env_file=None, max_weight=0.05)  # type: ignore[call-arg]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    market = synthetic_market(args.assets, args.years, seed=42)
    generate = time.perf_counter() - t0
    print(
        f"data: {args.assets} assets × {len(market.sessions)} sessions, generated in "
        f"{generate:.1f} s; peak RSS so far {_peak_gb():.2f} GB"
    )

    config = BacktestConfig(
        args.strategy,
        market.sessions[0],
        market.sessions[-1],
        WalkForward(n_windows=args.windows, retrain_every=args.retrain_every),
        rebalance_every=args.rebalance_every,
    )
    t0 = time.perf_counter()
    result = run(config, market, settings)
    engine_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    measured = metrics.summary(result.daily, result.signals)
    mc = montecarlo.daily_returns(result.daily["return"].to_numpy(), 1000, 10.0, 0)
    analysis = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        report.write(
            result, measured, mc, {"daily": mc.intervals()}, Path(folder), "bench", config.params()
        )
    tearsheet = time.perf_counter() - t0

    # Raw limits measured in this run.
    rebalances = int(result.daily["rebalanced"].sum())
    ours_call, solve = _optimizer_limit(market.close, settings)
    weights = result.weights.pivot(index="session_date", columns="symbol", values="weight")
    rets = market.close.pct_change(fill_method=None).reindex(weights.index)[weights.columns]
    t0 = time.perf_counter()
    _ = (weights.shift(1).fillna(0).to_numpy() * np.nan_to_num(rets.to_numpy())).sum(axis=1)
    replay = time.perf_counter() - t0

    load_after = os.getloadavg()
    stages, steps = dict(result.timings), dict(result.steps)
    sessions = len(result.daily)
    print(
        f"\nwalk-forward: {len(result.folds)} fits, {sessions} out-of-sample "
        f"sessions, {rebalances} rebalances, {len(result.trades)} fills"
    )
    print(f"{'stage':<26}{'seconds':>10}{'share':>9}")
    for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"{name:<26}{seconds:>10.1f}{seconds / engine_seconds:>9.0%}")
    print(f"{'engine total':<26}{engine_seconds:>10.1f}   (target ≤ 300 s; old engine 134 s)")
    print(f"\n{'live step, by part':<26}{'seconds':>10}{'share':>9}{'ms per call':>13}")
    calls = {"drift": sessions, "mark": sessions}  # the others run once per rebalance
    for name, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        per = seconds / max(calls.get(name, rebalances), 1) * 1000
        print(f"{name:<26}{seconds:>10.1f}{seconds / engine_seconds:>9.0%}{per:>13.0f}")
    print("  (plan includes the money-path guard; predict includes writing the predictions;")
    print("   drift: the book's value and the drift check, every session)")
    print(f"{'metrics + 1000-path MC':<26}{analysis:>10.1f}")
    print(f"{'tearsheet (7 PNG + HTML)':<26}{tearsheet:>10.1f}")
    total = engine_seconds + analysis + tearsheet
    print(f"{'total':<26}{total:>10.1f}")
    print(f"peak RSS: {_peak_gb():.2f} GB")
    print(
        f"load average (1, 5, 15 min): before {load_before[0]:.1f} {load_before[1]:.1f} "
        f"{load_before[2]:.1f}, after {load_after[0]:.1f} {load_after[1]:.1f} "
        f"{load_after[2]:.1f} on {os.cpu_count()} CPUs"
    )
    per_call = steps.get("plan", 0.0) / max(rebalances, 1)
    print(
        f"\nplan: {per_call * 1000:.0f} ms per rebalance in the run; on one "
        f"{args.assets}-asset problem our planner call takes {ours_call * 1000:.0f} ms and "
        f"CLARABEL's solve alone {solve * 1000:.0f} ms (raw limit), ratio "
        f"{ours_call / solve:.1f}×"
    )
    print(
        f"raw limit, accounting: vectorized weight replay {replay * 1000:.1f} ms; the live "
        f"step (sizing, gate, ledger, fills, marks) {stages.get('execute', 0):.1f} s"
    )
    refused = Counter(_refusal_kind(str(e["reason"])) for e in result.events)
    print(
        f"refused rebalances: {len(result.events)} "
        f"({', '.join(f'{kind} {n}' for kind, n in refused.most_common()) or 'none'})"
    )
    print(
        f"\nout of sample, after costs: Sharpe {measured['sharpe']:.2f}, max drawdown "
        f"{measured['max_drawdown']:.1%}, IC {measured.get('ic_mean', float('nan')):.3f}"
    )


if __name__ == "__main__":
    main()
