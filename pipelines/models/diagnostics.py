"""What a training run shows about its model: feature importance and validation diagnostics.

Conventions: returns are next-session simple returns (fractions); the validation dates are
the last ``VALIDATION_FRACTION`` of the training window's dates (as every model kind's own
validation split). Rank IC is the Spearman correlation of forecast and realized return across
stocks on one date (average ranks for ties).

* Native importance: XGBoost's total gain per feature, the random forest's impurity decrease,
  each scaled to sum to 1; a model without one (IPCA) has none.
* Permutation importance (every kind): the fall in mean daily rank IC on the validation rows
  when one feature's values are shuffled across all those rows (seeded), the model unchanged.
  Positive: the model relies on the feature; about 0: it does not.

Plots are PNGs (matplotlib, Agg) written into a folder that the training run logs as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

VALIDATION_FRACTION = 0.2
DECILES = 10
SEED = 0


def validation_dates(features: pd.DataFrame) -> pd.Index:
    """The last ``VALIDATION_FRACTION`` of the session dates in ``features``."""
    dates = np.sort(features.index.get_level_values("session_date").unique())
    return pd.Index(dates[int(len(dates) * (1 - VALIDATION_FRACTION)) :])


def daily_rank_ic(forecast: pd.Series, realized: pd.Series) -> pd.Series:
    """Rank IC per session date (dates where either side is constant are left out)."""
    frame = pd.DataFrame({"f": forecast, "r": realized}).dropna()
    by_date = frame.groupby(level="session_date")
    ranks = by_date.rank()
    # Pearson correlation of the ranks, date by date, from group sums (no Python loop).
    centred = ranks - ranks.groupby(level="session_date").transform("mean")
    sums = pd.DataFrame(
        {"fr": centred["f"] * centred["r"], "ff": centred["f"] ** 2, "rr": centred["r"] ** 2}
    ).groupby(level="session_date").sum()
    usable = (sums["ff"] > 1e-12) & (sums["rr"] > 1e-12)
    sums = sums[usable]
    return sums["fr"] / np.sqrt(sums["ff"] * sums["rr"])


def _forecast(model: Any, features: pd.DataFrame) -> pd.Series:
    return pd.Series(np.asarray(model.predict(features), dtype=float), index=features.index)


def native_importance(model: Any, columns: list[str]) -> pd.Series | None:
    """Gain (XGBoost) or impurity decrease (forest) per feature, summing to 1; else None."""
    raw: pd.Series | None = None
    if hasattr(model, "get_booster"):
        gain = model.get_booster().get_score(importance_type="total_gain")
        raw = pd.Series({c: float(gain.get(c, 0.0)) for c in columns})
    elif hasattr(model, "feature_importances_"):
        raw = pd.Series(np.asarray(model.feature_importances_, dtype=float), index=columns)
    if raw is None or raw.sum() <= 0:
        return None
    return raw / raw.sum()


def permutation_importance(model: Any, features: pd.DataFrame, realized: pd.Series) -> pd.Series:
    """Fall in mean daily rank IC when each feature is shuffled (one seeded shuffle each)."""
    base = daily_rank_ic(_forecast(model, features), realized).mean()
    rng = np.random.default_rng(SEED)
    drops = {}
    for column in features.columns:
        shuffled = features.copy()
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
        drops[column] = float(base - daily_rank_ic(_forecast(model, shuffled), realized).mean())
    return pd.Series(drops)


def importance_table(model: Any, features: pd.DataFrame, realized: pd.Series) -> pd.DataFrame:
    """One row per feature: native importance (if any) and permutation importance, sorted."""
    table = pd.DataFrame({"permutation_rank_ic_drop": permutation_importance(
        model, features, realized)})
    native = native_importance(model, list(features.columns))
    table.insert(0, "native", native if native is not None else np.nan)
    order = "native" if native is not None else "permutation_rank_ic_drop"
    table = table.sort_values(order, ascending=False)
    table.index.name = "feature"
    return table


def decile_returns(forecast: pd.Series, realized: pd.Series) -> pd.Series:
    """Mean realized return (fraction) per forecast decile, deciles formed date by date."""
    frame = pd.DataFrame({"f": forecast, "r": realized}).dropna()
    order = frame.groupby(level="session_date")["f"].rank(method="first")
    count = frame.groupby(level="session_date")["f"].transform("size")
    frame["decile"] = np.floor((order - 1) * DECILES / count).astype(int) + 1
    return frame.groupby("decile")["r"].mean()


def validation_table(forecast: pd.Series, realized: pd.Series) -> pd.DataFrame:
    """The validation scores as a one-row-per-metric table (the run's evaluation table)."""
    ic = daily_rank_ic(forecast, realized)
    frame = pd.DataFrame({"f": forecast, "r": realized}).dropna()
    deciles = decile_returns(forecast, realized)
    rows = {
        "dates": float(len(frame.index.get_level_values("session_date").unique())),
        "rows": float(len(frame)),
        "r2_zero": float(1 - np.sum((frame.r - frame.f) ** 2) / np.sum(frame.r**2)),
        "rank_ic_mean": float(ic.mean()),
        "rank_ic_t": _t_stat(ic),
        "top_minus_bottom_decile": float(deciles.iloc[-1] - deciles.iloc[0]),
    }
    return pd.DataFrame({"metric": list(rows), "value": list(rows.values())})


def _t_stat(values: pd.Series) -> float:
    """mean / (sd / √n); NaN with fewer than two values or no spread."""
    spread = values.std(ddof=1) if len(values) > 1 else 0.0
    return float(values.mean() / spread * np.sqrt(len(values))) if spread > 0 else float("nan")


def write(
    folder: Path,
    model: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    held_out: bool,
) -> dict[str, pd.DataFrame]:
    """Write the importance and validation tables and plots into ``folder``; return the tables.

    ``held_out`` says whether the model was fitted without the validation dates (the title
    says so: a model refitted on every date is scored in sample there).
    """
    folder.mkdir(parents=True, exist_ok=True)
    in_val = features.index.get_level_values("session_date").isin(validation_dates(features))
    val, realized = features[in_val], labels[in_val]
    forecast = _forecast(model, val)
    importance = importance_table(model, val, realized)
    scores = validation_table(forecast, realized)
    importance.to_csv(folder / "feature_importance.csv")
    scores.to_csv(folder / "validation_scores.csv", index=False)
    _importance_plot(importance, folder / "feature_importance.png")
    label = "held out" if held_out else "in sample: the registered model saw these dates"
    _validation_plot(forecast, realized, label, folder / "validation.png")
    return {"feature_importance": importance.reset_index(), "validation_scores": scores}


def _importance_plot(table: pd.DataFrame, path: Path) -> None:
    panels = [c for c in ("native", "permutation_rank_ic_drop") if table[c].notna().any()]
    size = (4.5 * len(panels) + 1, 0.3 * len(table) + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=size, dpi=100, squeeze=False)
    titles = {"native": "native (gain or impurity), share",
              "permutation_rank_ic_drop": "permutation: fall in rank IC"}
    for ax, column in zip(axes[0], panels, strict=True):
        values = table[column].iloc[::-1]
        ax.barh(values.index, values.to_numpy(), color="steelblue")
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(titles[column], fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Feature importance")
    # Fixed margins: tight_layout measures every label and costs seconds on a busy machine.
    fig.subplots_adjust(left=0.22, right=0.97, top=0.88, bottom=0.08, wspace=0.6)
    fig.savefig(path)
    plt.close(fig)


def _validation_plot(forecast: pd.Series, realized: pd.Series, label: str, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), dpi=100)
    deciles = decile_returns(forecast, realized) * 1e4
    left.bar(deciles.index, deciles.to_numpy(), color="seagreen")
    left.axhline(0, color="k", lw=0.6)
    left.set_xlabel("forecast decile (1 = lowest)")
    left.set_ylabel("mean next-session return (bp)")
    left.set_title("Realized return by forecast decile", fontsize=10)
    ic = daily_rank_ic(forecast, realized)
    right.bar(pd.to_datetime(pd.Index(ic.index)), ic.to_numpy(), color="slateblue", width=0.8)
    right.axhline(ic.mean(), color="firebrick", ls="--", lw=1, label=f"mean {ic.mean():+.3f}")
    right.set_title("Daily rank IC", fontsize=10)
    right.legend(loc="upper left")
    right.tick_params(axis="x", labelrotation=30)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Validation dates ({label})")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.85, bottom=0.2, wspace=0.25)
    fig.savefig(path)
    plt.close(fig)
