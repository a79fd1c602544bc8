"""Long-only mean-variance optimization with cvxpy, in factor form.

Maximizes ``μᵀw − γ·wᵀΣw`` with ``Σ = BᵀB + diag(d)`` written as ``‖Bw‖² + Σ dᵢwᵢ²``, subject to
``Σw = budget`` and ``0 ≤ w ≤ cap``. ``μ`` and ``Σ`` are daily (simple returns); ``w`` are
fractions of equity; ``budget = 1 − cash buffer``.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd

from pipelines.errors import OptimizationError
from pipelines.portfolio.risk_model import FactorCovariance

SOLVED = {cp.OPTIMAL, cp.OPTIMAL_INACCURATE}


def optimize(
    expected: pd.Series,
    risk: FactorCovariance,
    risk_aversion: float,
    max_weight: float,
    budget: float,
    solver: str = "CLARABEL",
) -> pd.Series:
    """Optimal weights indexed like ``risk.symbols``; raises OptimizationError on failure."""
    mu = expected.reindex(risk.symbols).to_numpy(dtype=float)
    if np.isnan(mu).any():
        missing = [s for s, m in zip(risk.symbols, mu, strict=True) if np.isnan(m)]
        raise OptimizationError(f"no expected return for {missing[:5]}…; align inputs first")
    n = len(mu)
    if max_weight * n < budget - 1e-12:
        raise OptimizationError(
            f"infeasible: {n} assets capped at {max_weight:.2%} cannot hold {budget:.2%} of "
            "equity; raise MAX_WEIGHT or widen the universe"
        )
    w = cp.Variable(n)
    variance = cp.sum_squares(risk.loadings @ w) + cp.sum(cp.multiply(risk.specific, cp.square(w)))
    problem = cp.Problem(
        cp.Maximize(mu @ w - risk_aversion * variance),
        [cp.sum(w) == budget, w >= 0, w <= max_weight],
    )
    try:
        problem.solve(solver=solver)
    except cp.error.SolverError as exc:
        raise OptimizationError(f"solver {solver} failed: {exc}; try another solver") from exc
    if problem.status not in SOLVED:
        raise OptimizationError(f"solver status {problem.status}; no orders will be produced")
    weights = np.clip(np.asarray(w.value), 0.0, max_weight)
    return pd.Series(weights, index=risk.symbols, name="weight")
