"""The tearsheet: an HTML page with PNG plots, written under ``$MLTRADE_HOME/reports/``.

The page is self-contained: every plot is embedded as a ``data:image/png;base64`` URI, so it
renders wherever the one file goes (MLflow's artifact preview shows it in a sandboxed frame
where relative links break). The PNGs are also written beside it, to open one by one.

Plots (matplotlib, Agg backend, no display needed): equity vs the benchmark, drawdown,
rolling 63-session Sharpe, monthly returns heatmap, exposure, turnover and the Monte Carlo
fan. The seed plan's targets are shown beside the measured values: out of sample, after costs.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipelines.backtest.engine import BacktestResult  # noqa: E402
from pipelines.backtest.metrics import against_targets, drawdown  # noqa: E402
from pipelines.backtest.montecarlo import MonteCarlo  # noqa: E402

ROLLING = 63
PLOTS = (
    "equity",
    "drawdown",
    "rolling_sharpe",
    "monthly_returns",
    "exposure",
    "turnover",
    "monte_carlo",
)


def _figure(height: float = 3.2) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(9, height), dpi=100)
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig: Any, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / f"{name}.png")
    plt.close(fig)
    return f"{name}.png"


def plots(result: BacktestResult, mc: MonteCarlo, folder: Path) -> dict[str, str]:
    """Write every PNG into ``folder``; return plot name -> file name."""
    daily = result.daily
    index = pd.to_datetime(pd.Index(daily.index))
    r = pd.Series(daily["return"].to_numpy(), index=index)
    b = pd.Series(daily["benchmark_return"].to_numpy(), index=index)
    out: dict[str, str] = {}

    fig, ax = _figure()
    ax.plot(index, (1 + r).cumprod(), label=f"{result.config.strategy} (after costs)", lw=1.4)
    ax.plot(
        index, (1 + b).cumprod(), label="benchmark: equal-weighted universe", lw=1.0, color="grey"
    )
    for fold in result.folds:
        if fold.window != 0 and fold.test_start == _first_of(result.folds, fold.window):
            ax.axvline(pd.Timestamp(fold.test_start), color="k", alpha=0.5, lw=0.9, ls=":")
    ax.set_title("Growth of 1 USD, out of sample (dotted lines: a new walk-forward window)")
    ax.legend(loc="best")
    out["equity"] = _save(fig, folder, "equity")

    fig, ax = _figure(2.6)
    dd = drawdown(r)
    ax.fill_between(index, dd * 100, 0, color="firebrick", alpha=0.5)
    ax.set_title("Drawdown (%)")
    out["drawdown"] = _save(fig, folder, "drawdown")

    fig, ax = _figure(2.6)
    rolling = r.rolling(ROLLING).mean() / r.rolling(ROLLING).std() * math.sqrt(252)
    ax.plot(index, rolling, lw=1.2)
    ax.axhline(1.5, color="green", ls="--", lw=0.8, label="target 1.5")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_title(f"Rolling {ROLLING}-session Sharpe (annualized)")
    ax.legend(loc="upper left")
    out["rolling_sharpe"] = _save(fig, folder, "rolling_sharpe")

    monthly = (1 + r).groupby([index.year, index.month]).prod() - 1
    table = monthly.unstack(level=1).reindex(columns=range(1, 13)) * 100
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(table) + 1.4), dpi=100)
    limit = float(np.nanmax(np.abs(table.to_numpy()))) if table.notna().any().any() else 1.0
    image = ax.imshow(table.to_numpy(), cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(12),
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    )
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="%")
    ax.set_title("Monthly returns (%)")
    out["monthly_returns"] = _save(fig, folder, "monthly_returns")

    fig, ax = _figure(2.6)
    ax.plot(index, daily["gross_exposure"].to_numpy() * 100, label="gross")
    ax.plot(index, daily["net_exposure"].to_numpy() * 100, label="net", ls="--")
    ax.set_ylim(bottom=0)
    ax.set_title("Exposure (% of equity)")
    ax.legend(loc="lower right")
    out["exposure"] = _save(fig, folder, "exposure")

    fig, ax = _figure(2.6)
    ax.bar(index, daily["turnover"].to_numpy() * 100, width=1.5, color="slateblue")
    ax.set_title("Daily turnover (% of equity traded)")
    out["turnover"] = _save(fig, folder, "turnover")

    fig, ax = _figure()
    fan = mc.wealth_quantiles((0.05, 0.25, 0.5, 0.75, 0.95))
    x = np.arange(len(fan))
    ax.fill_between(x, fan[0.05], fan[0.95], alpha=0.2, color="C0", label="5–95%")
    ax.fill_between(x, fan[0.25], fan[0.75], alpha=0.35, color="C0", label="25–75%")
    ax.plot(x, fan[0.5], color="C0", label="median")
    ax.plot(x, (1 + r).cumprod().to_numpy(), color="k", lw=1.0, label="realized")
    ax.set_xlabel("sessions out of sample")
    ax.set_title(f"Monte Carlo: {len(mc.paths)} stationary-bootstrap paths of daily returns")
    ax.legend(loc="upper left")
    out["monte_carlo"] = _save(fig, folder, "monte_carlo")
    return out


def _fmt(key: str, value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return html.escape(str(value))
    if not math.isfinite(value):
        return "n/a"
    percent = {
        "total_return",
        "annual_return",
        "annual_volatility",
        "daily_vol",
        "max_drawdown",
        "win_rate",
        "model_accuracy",
        "gross_exposure",
        "net_exposure",
        "turnover_daily",
        "benchmark_total_return",
        "alpha",
    }
    return f"{value:.2%}" if key in percent else f"{value:,.4g}"


def write(
    result: BacktestResult,
    metrics: dict[str, float],
    mc: MonteCarlo,
    mc_intervals: dict[str, Any],
    folder: Path,
    title: str,
    params: dict[str, Any],
) -> Path:
    """Write ``index.html`` and the PNGs into ``folder``; return the HTML's path."""
    folder.mkdir(parents=True, exist_ok=True)
    images = plots(result, mc, folder)
    targets = "".join(
        f"<tr><td>{html.escape(str(row['metric']))}</td><td>{html.escape(str(row['target']))}</td>"
        f"<td>{_fmt(str(row['metric']), row['measured'])}</td>"
        + ("<td class=met>met</td></tr>" if row["met"] else "<td class=miss>not met</td></tr>")
        for row in against_targets(metrics)
    )
    table = "".join(
        f"<tr><td>{k}</td><td>{_fmt(k, v)}</td></tr>"
        for k, v in metrics.items()
        if not k.startswith("attribution_")
    )
    attribution = (
        "".join(
            f"<tr><td>{k.removeprefix('attribution_')}</td><td>{v:.2%}</td></tr>"
            for k, v in metrics.items()
            if k.startswith("attribution_")
        )
        or "<tr><td colspan=2>not available (see the log)</td></tr>"
    )
    intervals = "".join(
        f"<tr><td>{name}</td><td>{_fmt(name, ci['low'])}</td><td>{_fmt(name, ci['median'])}</td>"
        f"<td>{_fmt(name, ci['high'])}</td></tr>"
        for section in ("daily", "trades")
        for name, ci in ((f"{section}: {k}", v) for k, v in mc_intervals.get(section, {}).items())
    )
    folds = "".join(
        f"<tr><td>{f.window}</td><td>{f.train_start} → {f.train_end} ({f.train_sessions})</td>"
        f"<td>{f.test_start} → {f.test_end} ({f.test_sessions})</td></tr>"
        for f in result.folds
    )
    settings = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in params.items()
    )
    figures = "".join(
        f'<img src="{_data_uri(folder / images[name])}" alt="{name}" data-file="{images[name]}">'
        for name in PLOTS
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px}}
.met{{color:#060}}.miss{{color:#a00}}img{{display:block;max-width:100%;margin:1em 0}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Walk-forward, out of sample only, after transaction costs
({result.daily.index[0]} → {result.daily.index[-1]}, {len(result.daily)} sessions,
{len(result.trades)} fills, {len(result.events)} blocked or lapsed actions).</p>
<h2>Seed-plan targets vs measured</h2>
<p>The strategy was not tuned to these numbers; a miss is reported as a miss.
"model_accuracy" is the share of predictions on the right side of the day's cross-sectional
mean; "win_rate" the share of sessions with a gain.</p>
<table><tr><th>metric</th><th>target</th><th>measured</th><th></th></tr>{targets}</table>
{figures}
<h2>Metrics</h2><table>{table}</table>
<h2>Return attribution (annualized contribution)</h2>
<p>Ex post: an IPCA with 3 factors fitted on this period's characteristics; holdings' factor
exposures times factor returns, the idiosyncratic rest, and what trading at the open and
costs took (see <code>pipelines/backtest/attribution.py</code>).</p>
<table>{attribution}</table>
<h2>Monte Carlo 95% intervals</h2>
<table><tr><th></th><th>2.5%</th><th>median</th><th>97.5%</th></tr>{intervals}</table>
<h2>Walk-forward folds</h2>
<table><tr><th>window</th><th>train (sessions)</th><th>test (sessions)</th></tr>{folds}</table>
<h2>Parameters</h2><table>{settings}</table>
</body></html>"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _data_uri(png: Path) -> str:
    """The PNG file as a ``data:`` URI (base64)."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _first_of(folds: list, window: int) -> object:
    return next(f.test_start for f in folds if f.window == window)
