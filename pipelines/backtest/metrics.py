"""Performance metrics of a backtest, out of sample and after costs.

Returns are daily simple returns of equity; annualization uses 252 sessions; risk-free rate 0.
Where empyrical-reloaded (``empyrical``) has the metric it computes it (total and annual
return, volatility, Sharpe, Sortino, Calmar, max drawdown, alpha/beta to the benchmark); ours
are those it lacks: drawdown duration, hit rate, turnover, exposure, information coefficient,
directional accuracy, and the probabilistic and deflated Sharpe ratios (Bailey & López de
Prado 2012, 2014). Sharpe ratios inside PSR/DSR are per session (not annualized), as the
papers define them.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
from scipy import stats

PERIODS = 252
EULER_GAMMA = 0.5772156649015329

#: The seed plan's targets, shown next to measured values (never tuned to).
TARGETS = {
    "sharpe": ("> 1.5", lambda v: v > 1.5),
    "max_drawdown": ("< 10%", lambda v: abs(v) < 0.10),
    "win_rate": ("> 55%", lambda v: v > 0.55),
    "model_accuracy": ("> 65%", lambda v: v > 0.65),
    "daily_vol": ("< 2%", lambda v: v < 0.02),
}


def drawdown(returns: pd.Series) -> pd.Series:
    """Equity's fall from its running peak, as a negative fraction (0 at a new high)."""
    wealth = (1 + returns).cumprod()
    return wealth / np.maximum(wealth.cummax(), 1.0) - 1


def max_drawdown_duration(returns: pd.Series) -> int:
    """The longest run of sessions spent below a previous peak (0: never under water)."""
    under = (drawdown(returns) < 0).to_numpy()
    longest = current = 0
    for flag in under:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def hit_rate(returns: pd.Series) -> float:
    """Share of sessions with a gain among sessions with a non-zero return."""
    moved = returns[returns != 0]
    return float((moved > 0).mean()) if len(moved) else float("nan")


def information_coefficient(signals: pd.DataFrame) -> pd.Series:
    """Per date: Spearman correlation of ``expected`` with ``realized`` next-session returns."""
    valid = signals.dropna(subset=["expected", "realized"])
    by_date = valid.groupby("session_date")
    ranked = pd.DataFrame(
        {
            "e": by_date["expected"].rank(),
            "r": by_date["realized"].rank(),
            "d": valid["session_date"],
        }
    )
    return ranked.groupby("d").apply(lambda g: g["e"].corr(g["r"]) if len(g) > 2 else np.nan)


def directional_accuracy(signals: pd.DataFrame) -> float:
    """Pooled share of predictions whose side of the day's mean matches the outcome's.

    Both prediction and outcome are demeaned per date, so a market move is not "accuracy".
    """
    valid = signals.dropna(subset=["expected", "realized"])
    if valid.empty:
        return float("nan")
    by_date = valid.groupby("session_date")
    e = valid["expected"] - by_date["expected"].transform("mean")
    r = valid["realized"] - by_date["realized"].transform("mean")
    moved = (e != 0) & (r != 0)
    return float((np.sign(e[moved]) == np.sign(r[moved])).mean())


def sharpe_per_period(returns: pd.Series) -> float:
    sd = returns.std(ddof=1)
    return float(returns.mean() / sd) if sd > 0 else float("nan")


def probabilistic_sharpe_ratio(returns: pd.Series, benchmark_sharpe: float = 0.0) -> float:
    """P(true per-session Sharpe > ``benchmark_sharpe``) given skew and kurtosis (PSR)."""
    return psr_from_moments(
        sharpe_per_period(returns),
        len(returns),
        float(stats.skew(returns)),
        float(stats.kurtosis(returns, fisher=False)),
        benchmark_sharpe,
    )


def psr_from_moments(
    sharpe: float, t: int, skew: float, kurtosis: float, benchmark_sharpe: float = 0.0
) -> float:
    """PSR from a per-session Sharpe over ``t`` sessions, skewness and (raw) kurtosis."""
    denominator = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if t < 2 or not math.isfinite(sharpe) or denominator <= 0:
        return float("nan")
    z = (sharpe - benchmark_sharpe) * math.sqrt(t - 1) / math.sqrt(denominator)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-session Sharpe of ``n_trials`` unskilled configurations (SR₀)."""
    if n_trials <= 1:
        return 0.0
    return math.sqrt(sharpe_variance) * (
        (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
        + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * math.e))
    )


def deflated_sharpe_ratio(
    returns: pd.Series, n_trials: int, sharpe_variance: float | None = None
) -> float:
    """DSR: PSR against the best Sharpe ``n_trials`` tries would reach by luck.

    ``sharpe_variance`` is the variance of the per-session Sharpe ratios across the trials;
    without it, the estimator's own variance ``(1 + SR²/2) / T`` stands in.
    """
    sr = sharpe_per_period(returns)
    if sharpe_variance is None:
        sharpe_variance = (1 + sr**2 / 2) / max(len(returns), 1)
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(n_trials, sharpe_variance))


def summary(
    daily: pd.DataFrame,
    signals: pd.DataFrame | None = None,
    n_trials: int = 1,
    sharpe_variance: float | None = None,
) -> dict[str, float]:
    """Every metric of the daily frame the engine returns (``return``, ``benchmark_return``,
    ``turnover``, exposures, ``costs``), as plain floats."""
    r = daily["return"].astype(float)
    b = daily["benchmark_return"].astype(float)
    alpha, beta = empyrical.alpha_beta(r, b)
    out = {
        "total_return": float(empyrical.cum_returns_final(r)),
        "annual_return": float(empyrical.annual_return(r)),
        "annual_volatility": float(empyrical.annual_volatility(r)),
        "daily_vol": float(r.std(ddof=1)),
        "sharpe": float(empyrical.sharpe_ratio(r)),
        "sortino": float(empyrical.sortino_ratio(r)),
        "calmar": float(empyrical.calmar_ratio(r)),
        "max_drawdown": float(empyrical.max_drawdown(r)),
        "max_drawdown_duration": float(max_drawdown_duration(r)),
        "win_rate": hit_rate(r),
        "turnover_daily": float(daily["turnover"].mean()),
        "turnover_annual": float(daily["turnover"].mean() * PERIODS),
        "gross_exposure": float(daily["gross_exposure"].mean()),
        "net_exposure": float(daily["net_exposure"].mean()),
        "costs_total": float(daily["costs"].sum()),
        "alpha": float(alpha),
        "beta": float(beta),
        "benchmark_sharpe": float(empyrical.sharpe_ratio(b)),
        "benchmark_total_return": float(empyrical.cum_returns_final(b)),
        "psr": probabilistic_sharpe_ratio(r),
        "dsr": deflated_sharpe_ratio(r, n_trials, sharpe_variance),
        "n_trials": float(n_trials),
        "sessions": float(len(r)),
    }
    if signals is not None and len(signals):
        ic = information_coefficient(signals)
        out["ic_mean"] = float(ic.mean())
        out["ic_tstat"] = float(ic.mean() / ic.std(ddof=1) * math.sqrt(ic.count()))
        out["model_accuracy"] = directional_accuracy(signals)
    return out


def against_targets(measured: dict[str, float]) -> list[dict[str, object]]:
    """The seed plan's targets beside the measured out-of-sample, after-cost values."""
    rows = []
    for key, (target, met) in TARGETS.items():
        value = measured.get(key, float("nan"))
        rows.append(
            {
                "metric": key,
                "target": target,
                "measured": value,
                "met": bool(met(value)) if math.isfinite(value) else False,
            }
        )
    return rows
