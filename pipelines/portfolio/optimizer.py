"""One entry point for every optimizer: ``optimize(expected_returns, risk_model, constraints,
current_weights) -> weights``, choosing the formulation by name (setting ``OPTIMIZER``).

* ``mean_variance`` — :mod:`mean_variance` (risk aversion γ = ``RISK_AVERSION``);
* ``max_sharpe`` — :mod:`max_sharpe` (Cornuéjols–Tütüncü homogenization);
* ``min_variance`` — :mod:`min_variance`;
* ``risk_parity`` — :mod:`risk_parity` (Spinu's log-barrier form).

Weights are fractions of equity indexed like ``risk_model.symbols``; expected returns are daily.
Compiled problems are kept in a :class:`PortfolioOptimizer` (and a small module-level cache for
the functional API), so a backtest re-solves with new parameter values without recompiling.
Any solve that is not ``optimal`` raises :class:`OptimizationError`: no plan, no orders.

Minimum trade size (``MIN_TRADE_WEIGHT``, applied after solving, see :func:`apply_min_trade`):
a trade ``|wᵢ − w₀ᵢ| < m`` is not made — the position stays at its current weight. For
long-only books, if that leaves more invested than the budget, the remaining buys are shrunk
proportionally until the budget holds again (one pass; a shrunk buy may fall under m and is
then still sent — the order sizer's ``MIN_ORDER_NOTIONAL`` drops it). Short books are left as
they are; the gate re-checks every limit on the final weights.

Trade caps (``trade_caps``: the planner's, from ``MAX_ORDER_NOTIONAL``): ``|wᵢ − w₀ᵢ| ≤ cᵢ``,
set as a parameter at each solve; left out when none can bind (every ``cᵢ`` at least the
largest trade the weight bounds allow), so a limit above the book's trades changes nothing.
A long-only budget that the capped trades cannot reach in one session is moved to the
nearest reachable one (:func:`reachable_budget`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from pipelines.errors import ConfigurationError, OptimizationError
from pipelines.portfolio import max_sharpe, mean_variance, min_variance, risk_parity
from pipelines.portfolio.constraints import Constraints
from pipelines.portfolio.problem import Builder, CompiledProblem
from pipelines.portfolio.risk_model import FactorCovariance

Method = Literal["mean_variance", "max_sharpe", "min_variance", "risk_parity"]

#: name → (formulation, whether γ scales the risk term)
METHODS: dict[str, tuple[Builder, bool]] = {
    "mean_variance": (mean_variance.build, True),
    "max_sharpe": (max_sharpe.build, False),
    "min_variance": (min_variance.build, False),
    "risk_parity": (risk_parity.build, False),
}
CAP_TOLERANCE = 1e-7
log = logging.getLogger(__name__)


class PortfolioOptimizer:
    """Holds compiled problems (one per universe, factor count and constraints)."""

    def __init__(
        self, method: str = "mean_variance", solver: str = "CLARABEL", max_cached: int = 8
    ) -> None:
        if method not in METHODS:
            raise ConfigurationError(f"OPTIMIZER={method!r}: choose one of {sorted(METHODS)}")
        self.method, self.solver, self.max_cached = method, solver, max_cached
        self._cache: OrderedDict[tuple, CompiledProblem] = OrderedDict()

    def compiled(self, symbols: list[str], k: int, constraints: Constraints) -> CompiledProblem:
        key = (k, constraints.key(symbols))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        builder, scaled = METHODS[self.method]
        problem = CompiledProblem(
            self.method, builder, symbols, k, constraints, self.solver, scaled
        )
        self._cache[key] = problem
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return problem

    def optimize(
        self,
        expected_returns: pd.Series | None,
        risk_model: FactorCovariance,
        constraints: Constraints,
        current_weights: pd.Series | None = None,
        risk_aversion: float = 1.0,
        trade_caps: pd.Series | None = None,
    ) -> pd.Series:
        symbols = list(risk_model.symbols)
        n = len(symbols)
        constraints.check_feasible(n)
        mu = _aligned_returns(
            expected_returns, symbols, required=self.method in {"mean_variance", "max_sharpe"}
        )
        w0 = (
            np.zeros(n)
            if current_weights is None
            else (current_weights.reindex(symbols).fillna(0.0).to_numpy(dtype=float))
        )
        caps = None
        if trade_caps is not None and self.method != "risk_parity":
            caps = trade_caps.reindex(symbols).fillna(0.0).clip(lower=0.0).to_numpy(dtype=float)
            if np.all(caps >= _largest_trades(constraints, w0)):
                caps = None  # no cap can bind: the uncapped problem is the same problem
            else:
                constraints = reachable_budget(replace(constraints, trade_caps=True), w0, caps)
        problem = self.compiled(symbols, risk_model.loadings.shape[0], constraints)
        raw = problem.solve(mu, risk_model, w0, risk_aversion, caps)
        if self.method == "risk_parity" and raw.max() > constraints.max_weight + CAP_TOLERANCE:
            raise OptimizationError(
                f"the risk-parity portfolio puts {raw.max():.2%} in one asset, above "
                f"MAX_WEIGHT {constraints.max_weight:.2%}; raise MAX_WEIGHT or widen the universe"
            )
        weights = _clean(raw, constraints)
        if constraints.min_trade > 0:
            weights = apply_min_trade(weights, w0, constraints)
        return pd.Series(weights, index=symbols, name="weight")


_FUNCTIONAL: dict[tuple[str, str], PortfolioOptimizer] = {}


def optimize(
    expected_returns: pd.Series | None,
    risk_model: FactorCovariance,
    constraints: Constraints,
    current_weights: pd.Series | None = None,
    *,
    method: str = "mean_variance",
    risk_aversion: float = 1.0,
    solver: str = "CLARABEL",
    trade_caps: pd.Series | None = None,
) -> pd.Series:
    """Optimal weights (fractions of equity, indexed like ``risk_model.symbols``).

    ``trade_caps``: each symbol's cap on ``|w − w₀|`` (fractions of equity; a symbol without
    one is not traded); risk parity does not use them (its weights are fixed by the risk).
    Raises OptimizationError for an infeasible or failed solve, ConfigurationError for an
    unknown method or a constraint the method cannot honour.
    """
    key = (method, solver)
    if key not in _FUNCTIONAL:
        _FUNCTIONAL[key] = PortfolioOptimizer(method, solver)
    return _FUNCTIONAL[key].optimize(
        expected_returns, risk_model, constraints, current_weights, risk_aversion, trade_caps
    )


def _largest_trades(c: Constraints, w0: np.ndarray) -> np.ndarray:
    """Each asset's largest ``|w − w₀|`` within its weight bounds alone."""
    if c.mode == "long_only":
        return np.maximum(w0, c.max_weight - w0)
    return c.max_weight + np.abs(w0)


def reachable_budget(c: Constraints, w0: np.ndarray, caps: np.ndarray) -> Constraints:
    """A long-only book whose trades are capped can move its invested fraction only so far in
    one session: the budget is brought inside ``[Σ max(0, w₀ − c), Σ min(max_weight, w₀ + c)]``
    (the book walks toward it over the next sessions instead of the plan failing)."""
    if c.mode != "long_only":
        return c
    low = float(np.maximum(w0 - caps, 0.0).sum())
    high = float(np.minimum(w0 + caps, c.max_weight).sum())
    budget = min(max(c.budget, low), high)
    if budget == c.budget:
        return c
    log.info(
        "budget %.4f is out of one session's reach under the trade caps: %.4f", c.budget, budget
    )
    return replace(c, budget=budget)


def apply_min_trade(weights: np.ndarray, current: np.ndarray, c: Constraints) -> np.ndarray:
    """Drop trades under ``c.min_trade`` (see the module docstring for the exact rule)."""
    w = np.asarray(weights, dtype=float).copy()
    small = np.abs(w - current) < c.min_trade
    w[small] = current[small]
    if c.mode == "long_only":
        excess = w.sum() - c.budget
        buys = np.where(~small & (w > current), w - current, 0.0)
        if excess > 1e-12 and buys.sum() > 0:
            w -= buys * min(1.0, excess / buys.sum())
    return w


def _aligned_returns(expected: pd.Series | None, symbols: list[str], required: bool) -> np.ndarray:
    if expected is None:
        if required:
            raise OptimizationError("this optimizer needs expected returns; none were given")
        return np.zeros(len(symbols))
    mu = expected.reindex(symbols).to_numpy(dtype=float)
    if np.isnan(mu).any():
        if not required:
            return np.nan_to_num(mu)
        missing = [s for s, m in zip(symbols, mu, strict=True) if np.isnan(m)]
        raise OptimizationError(f"no expected return for {missing[:5]}…; align inputs first")
    return mu


def _clean(raw: np.ndarray, c: Constraints) -> np.ndarray:
    """Remove solver round-off outside the bounds (at most the solver's tolerance)."""
    if c.mode == "long_only":
        return np.clip(raw, 0.0, c.max_weight)
    return np.clip(raw, -c.max_weight, c.max_weight)
