"""Maximum Sharpe ratio by homogenization (Cornuéjols & Tütüncü, *Optimization Methods in
Finance*, §8.2).

``max μᵀw / √(wᵀΣw)`` over a feasible set C is not convex, but with ``w = y/κ`` (κ > 0) and the
normalization ``μᵀy = 1`` it becomes the convex QP ``min yᵀΣy`` over ``{(y, κ): y/κ ∈ C}``:
every constraint ``a(w) ≤ b`` is written ``a(y) ≤ b·κ`` (see :mod:`constraints`). The weights
are ``w = y/κ``. The risk-free rate is 0 (μ are excess daily returns).

A turnover *penalty* in the objective does not homogenize and is refused; a turnover *limit*
works. If no feasible portfolio has a positive expected return the problem is infeasible and
:class:`OptimizationError` says so.
"""

from __future__ import annotations

from collections.abc import Callable

import cvxpy as cp
import numpy as np

from pipelines.errors import ConfigurationError
from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.problem import Parameters


def build(
    p: Parameters, c: Constraints, symbols: list[str]
) -> tuple[cp.Problem, Callable[[], np.ndarray]]:
    if c.turnover_penalty:
        raise ConfigurationError(
            "OPTIMIZER=max_sharpe cannot use TURNOVER_PENALTY (it does not homogenize); "
            "set TURNOVER_LIMIT instead, or TURNOVER_PENALTY=0"
        )
    y = cp.Variable(len(symbols), name="y")
    kappa = cp.Variable(nonneg=True, name="kappa")
    constraints = [p.mu @ y == 1, *c.cvxpy(y, kappa, p.w0, symbols, p.trade_caps)]
    problem = cp.Problem(cp.Minimize(p.variance(y)), constraints)
    return problem, lambda: np.asarray(y.value) / np.asarray(kappa.value).item()
