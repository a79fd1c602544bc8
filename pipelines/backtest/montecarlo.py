"""Monte Carlo by bootstrap: confidence intervals for Sharpe, drawdown and terminal wealth.

Daily returns are resampled with the *stationary bootstrap* (Politis & Romano 1994): blocks
start at uniform positions and have geometric lengths of mean ``block`` sessions, wrapping
around the end, so serial dependence within blocks survives. Trade sequences are resampled
the same way from per-trade P&L. Each path ``p`` draws from its own generator seeded
``(seed, p)``, so a path does not depend on how many others are drawn: reproducible.
Sharpe is annualized (252), drawdowns are negative fractions, wealth starts at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PERIODS = 252


def stationary_indices(n: int, length: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """``length`` indices into ``range(n)``: geometric blocks of mean ``block``, wrapped."""
    p = 1.0 / block
    index = np.empty(length, dtype=np.int64)
    index[0] = rng.integers(n)
    restart = rng.random(length) < p
    fresh = rng.integers(n, size=length)
    for t in range(1, length):
        index[t] = fresh[t] if restart[t] else (index[t - 1] + 1) % n
    return index


def bootstrap_paths(
    returns: np.ndarray,
    n_paths: int = 1000,
    block: float = 10.0,
    seed: int = 0,
    length: int | None = None,
) -> np.ndarray:
    """``n_paths × length`` resampled return paths."""
    values = np.asarray(returns, dtype=float)
    length = length or len(values)
    out = np.empty((n_paths, length))
    for path in range(n_paths):
        rng = np.random.default_rng([seed, path])
        out[path] = values[stationary_indices(len(values), length, block, rng)]
    return out


@dataclass(frozen=True)
class MonteCarlo:
    paths: np.ndarray  # n_paths × T daily returns
    sharpe: np.ndarray
    max_drawdown: np.ndarray
    terminal_wealth: np.ndarray

    def intervals(self, level: float = 0.95) -> dict[str, dict[str, float]]:
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        return {
            name: {
                "low": float(np.quantile(values, lo)),
                "median": float(np.median(values)),
                "high": float(np.quantile(values, hi)),
            }
            for name, values in (
                ("sharpe", self.sharpe),
                ("max_drawdown", self.max_drawdown),
                ("terminal_wealth", self.terminal_wealth),
            )
        }

    def wealth_quantiles(
        self, quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    ) -> pd.DataFrame:
        """Per session, quantiles of wealth across paths (the fan chart)."""
        wealth = np.cumprod(1 + self.paths, axis=1)
        return pd.DataFrame(np.quantile(wealth, quantiles, axis=0).T, columns=list(quantiles))


def _statistics(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sd = paths.std(axis=1, ddof=1)
    sharpe = np.where(
        sd > 0, paths.mean(axis=1) / np.where(sd > 0, sd, 1) * np.sqrt(PERIODS), np.nan
    )
    wealth = np.cumprod(1 + paths, axis=1)
    peak = np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0)
    return sharpe, (wealth / peak - 1).min(axis=1), wealth[:, -1]


def daily_returns(
    returns: pd.Series | np.ndarray, n_paths: int = 1000, block: float = 10.0, seed: int = 0
) -> MonteCarlo:
    """Stationary bootstrap of daily returns."""
    paths = bootstrap_paths(np.asarray(returns, dtype=float), n_paths, block, seed)
    return MonteCarlo(paths, *_statistics(paths))


def trade_sequences(
    trade_pnl: np.ndarray, equity: float, n_paths: int = 1000, block: float = 5.0, seed: int = 0
) -> MonteCarlo:
    """Bootstrap of the sequence of per-trade P&L (USD) on a starting ``equity`` (USD).

    Each trade's P&L becomes a return on the starting equity; paths are as long as the record.
    """
    returns = np.asarray(trade_pnl, dtype=float) / equity
    paths = bootstrap_paths(returns, n_paths, block, seed)
    return MonteCarlo(paths, *_statistics(paths))


def trade_pnl(trades: pd.DataFrame, marks: pd.DataFrame) -> np.ndarray:
    """Per round trip in a symbol (FIFO not needed: average cost), the realized P&L in USD.

    A sell realizes ``qty × (price − average cost)``; positions still open at the end are
    marked at the last close. ``marks`` is the close panel (sessions × symbols).
    """
    pnl: list[float] = []
    book: dict[str, tuple[float, float]] = {}
    for t in trades.itertuples(index=False):
        qty, cost = book.get(t.symbol, (0.0, 0.0))
        if t.side == "buy":
            book[t.symbol] = (qty + t.qty, cost + t.qty * t.price + t.commission)
        elif qty > 0:
            average = cost / qty
            sold = min(t.qty, qty)
            pnl.append(sold * (t.price - average) - t.commission)
            book[t.symbol] = (qty - sold, cost - sold * average)
    last = marks.ffill().iloc[-1]
    for symbol, (qty, cost) in book.items():
        if qty > 0:
            pnl.append(qty * float(last[symbol]) - cost)
    return np.asarray(pnl)
