"""Long-only mean-variance with caps and an L1 turnover cost: ours (cvxpy, factor form,
compiled once) vs PyPortfolioOpt 1.6 (``EfficientFrontier`` + ``transaction_cost`` +
``max_quadratic_utility``, full N×N covariance) on the same problem.

    .venv/bin/python benchmarks/optimizer.py            # N=500 vs PyPortfolioOpt, N=3000 ours
    .venv/bin/python benchmarks/optimizer.py --repeats 21

Problem (both sides): maximize ``μᵀw − ½δ·wᵀΣw − k·‖w − w₀‖₁`` s.t. ``Σw = 1``,
``0 ≤ w ≤ cap``; Σ = BᵀB + diag(d) with K factors. Parameterization mapping: PyPortfolioOpt's
``risk_aversion=δ`` is our ``RISK_AVERSION γ = δ/2``; its ``transaction_cost(k=k)`` is our
``TURNOVER_PENALTY = k``; its ``weight_bounds=(0, cap)`` is our ``MAX_WEIGHT = cap`` with budget
1. Both objectives are evaluated on the returned weights with the same formula.

Timings are medians over repeats. "ours re-solve" is what a backtest pays per rebalance: new
μ and w₀ values into the compiled problem (cvxpy DPP, no recompilation). "ours cold" includes
building and compiling. PyPortfolioOpt builds a new problem each call (its API has no reuse).

Then the planner's default risk model, Ledoit–Wolf on T=120 daily returns of 500 assets (factor
form with K = T = 120 dense rows), per rebalance (re-solve), in three forms on the same μ, w₀
and constraints: as solved before (CLARABEL's default KKT solver, faer), as solved now (QDLDL,
``pipelines.portfolio.solver.OPTIONS``: the same problem, weights equal to rounding), and a
low-rank plus diagonal approximation (the top k principal components of the sample part,
the rest of each asset's variance moved to its specific variance, so every asset's variance
is unchanged), whose weights differ: max |Δw| and the half-L1 distance to the exact weights
say by how much. Two return samples: i.i.d. noise and a 3-factor market.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier, objective_functions

from pipelines.portfolio import solver
from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.optimizer import PortfolioOptimizer
from pipelines.portfolio.risk_model import FactorCovariance, ledoit_wolf

DELTA, COST = 10.0, 1e-3


def instance(n: int, k: int, seed: int) -> tuple[pd.Series, FactorCovariance, pd.Series, float]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:04d}" for i in range(n)]
    loadings = rng.normal(0.0, 0.01 / np.sqrt(k), (k, n)) + 0.004 * (np.arange(k) == 0)[:, None]
    risk = FactorCovariance(symbols, loadings, rng.uniform(1e-4, 9e-4, n))
    mu = pd.Series(rng.normal(5e-4, 1e-3, n), index=symbols)
    w0 = pd.Series(rng.dirichlet(np.ones(n)), index=symbols)
    return mu, risk, w0, 10.0 / n  # caps bind: at least n/10 names


def utility(w: np.ndarray, mu: pd.Series, sigma: np.ndarray, w0: pd.Series) -> float:
    return float(
        mu.to_numpy() @ w - DELTA / 2 * w @ sigma @ w - COST * np.abs(w - w0.to_numpy()).sum()
    )


def ours(n: int, k: int, repeats: int, risk: FactorCovariance | None = None) -> dict:
    mu, base, w0, cap = instance(n, k, 0)
    risk = risk or base
    c = Constraints(max_weight=cap, budget=1.0, turnover_penalty=COST)
    t = time.perf_counter()
    opt = PortfolioOptimizer("mean_variance", "CLARABEL")
    w = opt.optimize(mu, risk, c, w0, risk_aversion=DELTA / 2)
    cold = time.perf_counter() - t
    times = []
    rng = np.random.default_rng(1)
    for _ in range(repeats):
        mu_i = mu + pd.Series(rng.normal(0, 1e-4, n), index=mu.index)
        t = time.perf_counter()
        opt.optimize(mu_i, risk, c, w0, risk_aversion=DELTA / 2)
        times.append(time.perf_counter() - t)
    return {"weights": w.to_numpy(), "cold": cold, "resolve": statistics.median(times),
            "mu": mu, "w0": w0, "cap": cap, "risk": risk}  # fmt: skip


def peer(mu: pd.Series, risk: FactorCovariance, w0: pd.Series, cap: float, repeats: int) -> dict:
    sigma = risk.matrix()
    times, weights = [], np.empty(0)
    for _ in range(repeats):
        t = time.perf_counter()
        ef = EfficientFrontier(mu, sigma, weight_bounds=(0, cap))
        ef.add_objective(objective_functions.transaction_cost, w_prev=w0.to_numpy(), k=COST)
        ef.max_quadratic_utility(risk_aversion=DELTA)
        times.append(time.perf_counter() - t)
        weights = np.asarray(ef.weights)
    return {"weights": weights, "time": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--peer-repeats", type=int, default=3)
    args = parser.parse_args()
    print("| N | K | ours re-solve | ours cold | PyPortfolioOpt | ratio | objective Δ |")
    print("|---|---|---|---|---|---|---|")
    for n, k, with_peer in [(500, 10, True), (3000, 10, False)]:
        o = ours(n, k, args.repeats)
        if with_peer:
            p = peer(o["mu"], o["risk"], o["w0"], o["cap"], args.peer_repeats)
            sigma = o["risk"].matrix().to_numpy()
            delta = utility(o["weights"], o["mu"], sigma, o["w0"]) - utility(
                p["weights"], o["mu"], sigma, o["w0"]
            )
            peer_s = f"{p['time']:.3f} s"
            ratio = f"{p['time'] / o['resolve']:.0f}× (cold {p['time'] / o['cold']:.0f}×)"
            delta_s = f"{delta:+.1e}"
        else:
            peer_s, ratio, delta_s = "not run", "—", "—"
        print(f"| {n} | {k} | {o['resolve'] * 1e3:.1f} ms | {o['cold'] * 1e3:.0f} ms | "
              f"{peer_s} | {ratio} | {delta_s} |")  # fmt: skip
    ledoit_wolf_forms(args.repeats)


def low_rank(risk: FactorCovariance, k: int) -> FactorCovariance:
    """The top ``k`` principal components of ``risk``'s factor part plus a diagonal that keeps
    each asset's variance: an approximation, not the same Σ."""
    _, s, vt = np.linalg.svd(risk.loadings, full_matrices=False)
    rest = np.sum((s[k:, None] * vt[k:]) ** 2, axis=0)
    return FactorCovariance(risk.symbols, s[:k, None] * vt[:k], risk.specific + rest)


def ledoit_wolf_forms(repeats: int) -> None:
    mu, _, _, _ = instance(500, 10, 0)
    rng = np.random.default_rng(2)
    samples = {
        "i.i.d.": rng.normal(5e-4, 0.02, (120, 500)),
        "3-factor": rng.normal(0, 0.01, (120, 3)) @ rng.normal(1, 0.5, (3, 500))
        + rng.normal(5e-4, 0.015, (120, 500)),
    }
    print("\n| returns | form | K | per rebalance | cold | max \\|Δw\\| | ½‖Δw‖₁ |")
    print("|---|---|---|---|---|---|---|")
    configured = dict(solver.OPTIONS)
    for name, returns in samples.items():
        lw = ledoit_wolf(pd.DataFrame(returns, columns=mu.index))
        solver.OPTIONS["CLARABEL"] = {}  # CLARABEL's default KKT solver, as before
        before = ours(500, 10, repeats, risk=lw)
        solver.OPTIONS.update(configured)
        exact = before["weights"]
        rows = [("Ledoit–Wolf, CLARABEL default (faer): before", lw, before)]
        rows.append(("Ledoit–Wolf, QDLDL: now", lw, ours(500, 10, repeats, risk=lw)))
        for k in (10, 20):
            approx = low_rank(lw, k)
            rows.append(("low rank + diagonal (approximation)", approx,
                         ours(500, 10, repeats, risk=approx)))  # fmt: skip
        for form, risk, o in rows:
            gap = o["weights"] - exact
            print(f"| {name} | {form} | {risk.loadings.shape[0]} | {o['resolve'] * 1e3:.1f} ms | "
                  f"{o['cold'] * 1e3:.0f} ms | {np.abs(gap).max():.1e} | "
                  f"{np.abs(gap).sum() / 2:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
