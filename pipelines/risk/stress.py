"""Stress tests of a plan: historical replays and factor shocks, stored per plan.

Losses are positive fractions of equity (a gain is negative), for the plan's target weights
held unchanged through the scenario (no rebalancing, cash earning 0).

* **Historical replay** (:data:`SCENARIOS`): the plan's own symbols' daily simple returns
  from ``bars`` over the window, compounded per symbol (buy and hold), weighted by the plan.
  A window the warehouse does not cover (no bars for any plan symbol) is stored with
  ``covered = false``; a symbol with no bars in a covered window is counted at 0 return and
  the uncovered weight is stored in ``detail``. The sample data (2009–2010) covers the
  2010 flash crash and the spring-2010 correction; 2008 and March 2020 are covered once
  history from Alpaca or Yahoo reaches them.
* **Index replay through beta** (scenarios ``sp500_beta_<name>``): the S&P 500 index's
  compounded return over each window, from ``skfolio.datasets.load_sp500_index()`` (daily
  closes 1990-01-02..2022-12-28, shipped inside the package, offline), times the plan's market
  beta: loss = ``−β·R_index``. β is the OLS slope of the plan's daily returns (its weights
  over the trailing window of its own symbols' bars) on the index's, over the dates both
  cover, when at least :data:`MIN_BETA_DAYS` overlap; otherwise (a window after 2022) on the
  equal-weighted return of the plan's own symbols, a proxy for the market, and ``detail``
  says which (``beta_source``). This linear map ignores everything but market exposure: a
  sector or factor tilt's own crisis behaviour is only in the direct replays and factor shocks.
* **Factor shocks**: ±k·σ on each of the first :data:`N_FACTORS` principal factors of the
  risk model's factor part ``BᵀB`` (``B = U S Vᵀ``: factor j moves returns by ``s_j·v_j`` per
  σ), so the shocks are the same for a rotation of B and work for IPCA (K rows) and
  Ledoit–Wolf (T rows) alike. Loss = ``∓k·s_j·(v_jᵀw)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import cache

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.portfolio.risk_model import FactorCovariance
from pipelines.warehouse import plans
from pipelines.warehouse.bars import closes_in_windows
from pipelines.warehouse.plans import PlanRef

#: name → (first session, last session) of the replayed window, inclusive.
SCENARIOS: dict[str, tuple[date, date]] = {
    "lehman_2008": (date(2008, 9, 12), date(2008, 10, 10)),
    "gfc_2008_2009": (date(2008, 9, 12), date(2009, 3, 9)),
    "flash_crash_2010": (date(2010, 5, 5), date(2010, 5, 7)),
    "correction_2010": (date(2010, 4, 23), date(2010, 7, 2)),
    "covid_2020": (date(2020, 2, 19), date(2020, 3, 23)),
}
N_FACTORS = 3
MIN_BETA_DAYS = 60
SHOCK_SIGMAS = 3.0
BASE_DAYS = 10  # a window's base is the last close in these calendar days before it


@dataclass(frozen=True)
class StressResult:
    scenario: str
    kind: str
    covered: bool
    loss: float | None
    start_date: date | None = None
    end_date: date | None = None
    detail: dict = field(default_factory=dict)


def historical(engine: sa.Engine, weights: pd.Series) -> list[StressResult]:
    """Buy-and-hold replays of ``weights`` over every scenario window (one read of the
    windows' closes and the :data:`BASE_DAYS` calendar days before each)."""
    symbols = list(weights.index)
    spans = [(start - timedelta(days=BASE_DAYS), end) for start, end in SCENARIOS.values()]
    panel = closes_in_windows(engine, symbols, spans)
    out = []
    for name, (start, end) in SCENARIOS.items():
        close = panel.loc[start:end].dropna(axis=1, how="all")
        if close.empty:
            out.append(StressResult(name, "historical", False, None, start, end))
            continue
        # from the close before the window (when held) to the window's last close
        first = close.bfill().iloc[0]
        before = panel.loc[start - timedelta(days=BASE_DAYS) : start - timedelta(days=1)]
        base = before.ffill().iloc[-1] if len(before) else pd.Series(dtype=float)
        base = base.reindex(close.columns).fillna(first)
        growth = close.ffill().iloc[-1] / base - 1
        r = growth.reindex(symbols).fillna(0.0)
        uncovered = float(weights[~weights.index.isin(growth.dropna().index)].abs().sum())
        loss = -float(r.to_numpy() @ weights.to_numpy())
        out.append(
            StressResult(name, "historical", True, loss, start, end,
                         {"uncovered_weight": uncovered, "sessions": len(close)})
        )  # fmt: skip
    return out


@cache
def _sp500() -> tuple[pd.Series, dict[str, float | None]]:
    """The S&P 500's daily returns by date, and its return over each scenario window (None
    when the index does not cover it), from the closes shipped with skfolio; read once, as
    the file never changes."""
    from skfolio.datasets import load_sp500_index

    closes = load_sp500_index().iloc[:, 0]
    closes.index = pd.DatetimeIndex(closes.index).date
    moves: dict[str, float | None] = {}
    for name, (start, end) in SCENARIOS.items():
        before = closes.loc[closes.index < start]
        window = closes.loc[(closes.index >= start) & (closes.index <= end)]
        covered = not (window.empty or before.empty)
        moves[name] = float(window.iloc[-1] / before.iloc[-1] - 1) if covered else None
    return (closes / closes.shift(1) - 1).dropna(), moves


def index_replays(weights: pd.Series, returns: pd.DataFrame) -> list[StressResult]:
    """``−β·R_index`` per scenario; ``returns`` are the plan symbols' trailing daily returns."""
    index_returns, moves = _sp500()
    plan = returns.reindex(columns=weights.index).fillna(0.0) @ weights
    common = plan.index.intersection(index_returns.index)
    if len(common) >= MIN_BETA_DAYS:
        market, source = index_returns.loc[common], "sp500_index"
        y = plan.loc[common]
    else:
        market, source, y = returns.mean(axis=1), "equal_weight_universe_proxy", plan
    x = market.to_numpy() - market.mean()
    beta = float(x @ (y.to_numpy() - y.mean()) / (x @ x))
    out = []
    for name, (start, end) in SCENARIOS.items():
        move = moves[name]
        if move is None:
            out.append(StressResult(f"sp500_beta_{name}", "historical", False, None, start, end))
            continue
        out.append(
            StressResult(f"sp500_beta_{name}", "historical", True, -beta * move, start, end,
                         {"beta": beta, "beta_source": source, "index_return": move})
        )  # fmt: skip
    return out


def factor_shocks(
    weights: pd.Series, risk: FactorCovariance, sigmas: float = SHOCK_SIGMAS
) -> list[StressResult]:
    """±``sigmas``·σ on each principal factor of ``risk``'s factor part."""
    w = weights.reindex(risk.symbols).fillna(0.0).to_numpy()
    _, s, vt = np.linalg.svd(risk.loadings, full_matrices=False)
    out = []
    for j in range(min(N_FACTORS, len(s))):
        v = vt[j] * (1 if vt[j].sum() >= 0 else -1)  # sign: "up" moves the average asset up
        exposure = float(s[j] * (v @ w))
        for sign, label in ((1, "up"), (-1, "down")):
            out.append(
                StressResult(f"pc{j + 1}_{label}_{sigmas:g}sd", "factor_shock", True,
                             -sign * sigmas * exposure, detail={"factor_sd": float(s[j])})
            )  # fmt: skip
    return out


def store(engine: sa.Engine, plan: PlanRef, results: list[StressResult]) -> None:
    """Replace the plan's stress rows (delete and insert in one transaction)."""
    plans.replace_stress(engine, plan, [asdict(r) for r in results])
