"""Risk parity: equal risk contributions ``w_i·(Σw)_i = wᵀΣw / N`` (long-only, fully invested).

Spinu (2013) / Maillard, Roncalli & Teïletche (2010): the strictly convex problem
``min ½·yᵀΣy − Σ bᵢ·log yᵢ`` (``bᵢ = 1/N``) has a unique solution ``y > 0`` whose first-order
conditions are ``yᵢ(Σy)ᵢ = bᵢ``, i.e. equal risk contributions; ``w = budget · y / Σy``.
The factor form keeps it small; the log terms need an exponential-cone solver (CLARABEL, SCS).
Interior-point accuracy on exponential cones is about 1e-5, so the solver's point is polished
with a few damped Newton steps on the same smooth objective (Hessian ``Σ + diag(b/y²)``
inverted through Woodbury in factor form), which brings the risk contributions equal to
machine precision.

The ERC portfolio is defined without further constraints: expected returns, turnover and
sector/factor bounds are not used. Caps are checked afterwards and a breach raises
:class:`OptimizationError` (an ERC portfolio clipped to caps is no longer ERC).
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
    if c.mode != "long_only":
        raise ConfigurationError("OPTIMIZER=risk_parity is long-only: set PORTFOLIO_MODE=long_only")
    n = len(symbols)
    y = cp.Variable(n, name="y")
    objective = 0.5 * p.variance(y) - cp.sum(cp.log(y)) / n
    problem = cp.Problem(cp.Minimize(objective))

    def weights() -> np.ndarray:
        v = _newton_polish(
            np.asarray(y.value), np.asarray(p.loadings.value), np.asarray(p.specific_sd.value) ** 2
        )
        return c.budget * v / v.sum()

    return problem, weights


def risk_contributions(weights: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Each asset's share of the portfolio variance, ``wᵢ(Σw)ᵢ / wᵀΣw`` (sums to 1)."""
    marginal = sigma @ weights
    return weights * marginal / float(weights @ marginal)


def _newton_polish(
    y: np.ndarray, loadings: np.ndarray, specific: np.ndarray, steps: int = 8
) -> np.ndarray:
    """Damped Newton on ``½yᵀ(BᵀB + D)y − Σ log(y)/N`` from a near-optimal positive ``y``."""
    n = len(y)
    b = 1.0 / n
    y = np.maximum(y, 1e-12)
    for _ in range(steps):
        grad = loadings.T @ (loadings @ y) + specific * y - b / y
        diag = specific + b / y**2
        # Woodbury: (BᵀB + diag)⁻¹g = D⁻¹g − D⁻¹Bᵀ(I + BD⁻¹Bᵀ)⁻¹BD⁻¹g
        dg = grad / diag
        small = np.eye(len(loadings)) + (loadings / diag) @ loadings.T
        step = dg - (loadings.T @ np.linalg.solve(small, loadings @ dg)) / diag
        t = 1.0
        while np.any(y - t * step <= 0):
            t /= 2
        y = y - t * step
        if np.max(np.abs(step) / y) < 1e-14:
            break
    return y
