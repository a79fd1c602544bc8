"""Minimum variance in factor form: minimize ``wᵀΣw + κ_t·‖w − w₀‖₁`` under the constraints.

Expected returns are not used. Σ is normalized to unit average variance before solving (the
minimizer does not change); ``κ_t`` is then relative to that scale. With
``PORTFOLIO_MODE=long_short`` (dollar neutral) the minimum is the empty book, so min variance is
meant for long-only.
"""

from __future__ import annotations

from collections.abc import Callable

import cvxpy as cp
import numpy as np

from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.problem import Parameters


def build(
    p: Parameters, c: Constraints, symbols: list[str]
) -> tuple[cp.Problem, Callable[[], np.ndarray]]:
    w = cp.Variable(len(symbols), name="w")
    objective = p.variance(w)
    if c.turnover_penalty:
        objective = objective + c.turnover_penalty * cp.norm1(w - p.w0)
    problem = cp.Problem(cp.Minimize(objective), c.cvxpy(w, 1.0, p.w0, symbols, p.trade_caps))
    return problem, lambda: np.asarray(w.value)
