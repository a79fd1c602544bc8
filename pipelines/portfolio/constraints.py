"""Portfolio constraints shared by every optimizer, written once for cvxpy.

Weights ``w`` are fractions of equity (positive long, negative short). Every constraint is
written for a weight expression and a *scale*: the scale is 1 for the ordinary problems and the
homogenizing variable ``κ`` for max Sharpe (``w = y/κ``), so ``a(w) ≤ b`` becomes
``a(y) ≤ b·κ`` and the same code serves both.

* ``long_only``: ``Σw = budget``, ``0 ≤ w ≤ max_weight``;
* ``long_short`` (dollar neutral): ``Σw = 0``, ``|w| ≤ max_weight``;
* ``gross_leverage``: ``Σ|w| ≤ L`` (for long-only it is implied by the budget);
* ``sector_max_weight``: ``|Σ_{i∈s} w_i| ≤ u`` for every sector ``s`` (net exposure);
* ``factor_bound``: ``|Σ_i x_{i,k} w_i| ≤ b`` for every factor ``k`` when loadings ``X`` (N×K)
  are given (e.g. IPCA's ``z_iᵀΓ_β``);
* ``turnover_limit``: ``Σ|w − w₀| ≤ τ`` against the current weights ``w₀``;
* ``trade_caps``: ``|wᵢ − w₀ᵢ| ≤ cᵢ`` per asset, the caps given at each solve (the planner
  derives them from ``MAX_ORDER_NOTIONAL``: no order the gate would refuse for its size);
* ``turnover_penalty``: ``κ_t·Σ|w − w₀|`` subtracted from the objective (a linear trading cost
  in the objective's units — daily return — per unit of weight traded);
* ``min_trade``: post-processing, see :func:`pipelines.portfolio.optimizer.apply_min_trade`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import cvxpy as cp
import numpy as np

from pipelines.errors import OptimizationError

Mode = Literal["long_only", "long_short"]


@dataclass(frozen=True)
class Constraints:
    """What a portfolio may look like. ``None`` means: no such constraint."""

    mode: Mode = "long_only"
    max_weight: float = 0.05
    budget: float = 1.0  # net invested fraction for long-only (1 − cash buffer)
    gross_leverage: float | None = None
    sectors: Mapping[str, str] = field(default_factory=dict)  # symbol → sector
    sector_max_weight: float | None = None
    factor_loadings: np.ndarray | None = None  # N × K, rows in the risk model's symbol order
    factor_bound: float | None = None
    turnover_limit: float | None = None
    #: whether each asset's trade is capped (the caps, fractions of equity, are a parameter
    #: set at every solve: :meth:`CompiledProblem.solve`)
    trade_caps: bool = False
    turnover_penalty: float = 0.0
    min_trade: float = 0.0

    def key(self, symbols: list[str]) -> tuple:
        """A hashable identity: a compiled problem is reused only for an equal key."""
        loadings = None if self.factor_loadings is None else self.factor_loadings.tobytes()
        sectors = tuple(self.sectors.get(s, "") for s in symbols) if self.sector_max_weight else ()
        return (
            self.mode,
            self.max_weight,
            self.budget,
            self.gross_leverage,
            sectors,
            self.sector_max_weight,
            loadings,
            self.factor_bound,
            self.turnover_limit,
            self.trade_caps,
            self.turnover_penalty,
            tuple(symbols),
        )

    def check_feasible(self, n: int) -> None:
        """Refuse before solving what obviously cannot hold (clear message, no solver noise)."""
        if self.mode == "long_only" and self.max_weight * n < self.budget - 1e-12:
            raise OptimizationError(
                f"infeasible: {n} assets capped at {self.max_weight:.2%} cannot hold "
                f"{self.budget:.2%} of equity; raise MAX_WEIGHT or widen the universe"
            )
        if self.mode == "long_short" and not self.gross_leverage:
            raise OptimizationError(
                "PORTFOLIO_MODE=long_short needs GROSS_LEVERAGE (e.g. 2.0): a dollar-neutral "
                "book is otherwise unbounded"
            )

    def sector_matrix(self, symbols: list[str]) -> tuple[list[str], np.ndarray]:
        """Sector names and the S×N 0/1 membership matrix (unknown symbols: sector ``""``)."""
        labels = [self.sectors.get(s, "") for s in symbols]
        names = sorted(set(labels))
        matrix = np.array([[1.0 if lab == name else 0.0 for lab in labels] for name in names])
        return names, matrix

    def cvxpy(
        self,
        w: cp.Expression,
        scale: cp.Expression | float,
        w0: cp.Expression,
        symbols: list[str],
        trade_caps: cp.Expression | None = None,
    ) -> list[cp.Constraint]:
        """The constraints on ``w`` (homogenized by ``scale``) against current weights ``w0``
        (and, when :attr:`trade_caps` is on, each asset's cap on its trade)."""
        out: list[cp.Constraint] = []
        if self.mode == "long_only":
            out += [cp.sum(w) == self.budget * scale, w >= 0, w <= self.max_weight * scale]
        else:
            out += [cp.sum(w) == 0, cp.abs(w) <= self.max_weight * scale]
        if self.gross_leverage is not None:
            out.append(cp.norm1(w) <= self.gross_leverage * scale)
        if self.sector_max_weight is not None and self.sectors:
            _, s = self.sector_matrix(symbols)
            out.append(cp.abs(s @ w) <= self.sector_max_weight * scale)
        if self.factor_bound is not None and self.factor_loadings is not None:
            out.append(cp.abs(self.factor_loadings.T @ w) <= self.factor_bound * scale)
        if self.turnover_limit is not None:
            out.append(cp.norm1(w - w0 * scale) <= self.turnover_limit * scale)
        if self.trade_caps:
            if trade_caps is None:
                raise ValueError("trade_caps is on: give the caps' expression")
            out.append(cp.abs(w - w0 * scale) <= cp.multiply(trade_caps, scale))
        return out
