"""Mean-variance optimization with risk aversion, in factor form.

Maximizes ``μᵀw − γ·wᵀΣw − κ_t·‖w − w₀‖₁`` under :class:`Constraints`, with
``Σ = BᵀB + diag(d)`` written as ``‖Bw‖² + ‖√d∘w‖²`` (γ is folded into the parameters as
``√γ·B`` and ``√(γd)``). ``μ`` and ``Σ`` are daily (simple returns); ``w`` are fractions of
equity; ``κ_t`` (``TURNOVER_PENALTY``) is a cost in daily return per unit of weight traded.

PyPortfolioOpt's ``max_quadratic_utility(risk_aversion=δ)`` maximizes ``μᵀw − ½δ·wᵀΣw``: the
same problem with ``γ = δ/2``; its ``transaction_cost(w, w_prev, k)`` is our ``κ_t = k``.
"""

from __future__ import annotations

from collections.abc import Callable

import cvxpy as cp
import numpy as np
import pandas as pd

from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.problem import Parameters
from pipelines.portfolio.risk_model import FactorCovariance


def build(
    p: Parameters, c: Constraints, symbols: list[str]
) -> tuple[cp.Problem, Callable[[], np.ndarray]]:
    w = cp.Variable(len(symbols), name="w")
    objective = p.mu @ w - p.variance(w)
    if c.turnover_penalty:
        objective = objective - c.turnover_penalty * cp.norm1(w - p.w0)
    problem = cp.Problem(cp.Maximize(objective), c.cvxpy(w, 1.0, p.w0, symbols, p.trade_caps))
    return problem, lambda: np.asarray(w.value)


def optimize(
    expected: pd.Series,
    risk: FactorCovariance,
    risk_aversion: float,
    max_weight: float,
    budget: float,
    solver: str = "CLARABEL",
) -> pd.Series:
    """Long-only, capped mean-variance weights indexed like ``risk.symbols`` (the simple API)."""
    from pipelines.portfolio.optimizer import optimize as optimize_any

    return optimize_any(
        expected,
        risk,
        Constraints(max_weight=max_weight, budget=budget),
        method="mean_variance",
        risk_aversion=risk_aversion,
        solver=solver,
    )
