"""A compiled portfolio problem: built once with ``cp.Parameter``s, re-solved many times.

The covariance is in factor form ``Σ = BᵀB + diag(d)`` (B is k×N: k factors, or the T
demeaned returns of a Ledoit–Wolf window), so the variance is ``‖Bw‖² + ‖√d∘w‖²`` and the
problem's size grows with k·N, never N². The parameters are the expected returns ``μ`` (N),
the current weights ``w₀`` (N), the scaled loadings ``√γ·B`` (k×N), the scaled specific
volatilities ``√(γ·d)`` (N) and each asset's cap on its trade (N, read when trades are
capped). A backtest that keeps one :class:`CompiledProblem` per
(method, universe, k, constraints) only sets new values: cvxpy reuses the canonicalization
(DPP) instead of recompiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.risk_model import FactorCovariance
from pipelines.portfolio.solver import solve


@dataclass
class Parameters:
    """The cvxpy parameters every optimizer's formulation reads."""

    mu: cp.Parameter
    w0: cp.Parameter
    loadings: cp.Parameter
    specific_sd: cp.Parameter
    trade_caps: cp.Parameter  # read only when the constraints cap trades

    def variance(self, w: cp.Expression) -> cp.Expression:
        """``wᵀΣw`` in factor form (times γ when the parameters carry it)."""
        return cp.sum_squares(self.loadings @ w) + cp.sum_squares(cp.multiply(self.specific_sd, w))


#: A formulation: (parameters, constraints, symbols) → (problem, weights extractor).
Weights = Callable[[], np.ndarray]
Builder = Callable[[Parameters, Constraints, list[str]], tuple[cp.Problem, Weights]]


class CompiledProblem:
    """One optimizer's problem over a fixed universe, factor count and constraint set."""

    def __init__(
        self,
        name: str,
        builder: Builder,
        symbols: list[str],
        k: int,
        constraints: Constraints,
        solver: str,
        scale_by_risk_aversion: bool,
    ) -> None:
        n = len(symbols)
        self.name, self.symbols, self.k, self.solver = name, symbols, k, solver
        self.constraints = constraints
        self._scaled = scale_by_risk_aversion
        self.params = Parameters(
            mu=cp.Parameter(n, name="mu"),
            w0=cp.Parameter(n, name="w0"),
            loadings=cp.Parameter((k, n), name="loadings"),
            specific_sd=cp.Parameter(n, nonneg=True, name="specific_sd"),
            trade_caps=cp.Parameter(n, nonneg=True, name="trade_caps"),
        )
        self.problem, self._weights = builder(self.params, constraints, symbols)
        self.solves = 0

    def solve(
        self,
        mu: np.ndarray,
        risk: FactorCovariance,
        w0: np.ndarray,
        risk_aversion: float = 1.0,
        trade_caps: np.ndarray | None = None,
    ) -> np.ndarray:
        """Weights (N) for new inputs; raises OptimizationError unless the solve is optimal.
        ``trade_caps``: each asset's cap on ``|w − w₀|`` (needed when the constraints cap
        trades)."""
        if self.constraints.trade_caps and trade_caps is None:
            raise ValueError(f"{self.name}: the constraints cap trades; give the caps")
        scale = risk_aversion if self._scaled else 1.0
        if not self._scaled:
            # Scale-free formulations (min variance, max Sharpe, risk parity): normalize Σ to
            # unit average variance so solver tolerances mean the same at every volatility.
            average = float(np.mean(np.sum(risk.loadings**2, axis=0) + risk.specific))
            scale = 1.0 / average if average > 0 else 1.0
        self.params.mu.value = mu
        self.params.w0.value = w0
        if trade_caps is not None:
            self.params.trade_caps.value = trade_caps
        self.params.loadings.value = np.sqrt(scale) * risk.loadings
        self.params.specific_sd.value = np.sqrt(scale * np.maximum(risk.specific, 0.0))
        solve(self.problem, self.solver, f"{self.name} over {len(self.symbols)} assets")
        self.solves += 1
        return np.asarray(self._weights(), dtype=float)
