"""Evaluation metrics on tiny hand-made data, with known answers and scipy as a peer."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from pipelines.models import evaluation

D1, D2, D3 = date(2020, 1, 2), date(2020, 1, 3), date(2020, 1, 6)


def _frame(rows: dict[date, tuple[list, list]], size=None) -> pd.DataFrame:
    """Rows per date: (forecasts, realized), symbols S0, S1, ... in order."""
    index, forecast, realized = [], [], []
    for day, (f, r) in rows.items():
        index += [(day, f"S{i}") for i in range(len(f))]
        forecast += list(f)
        realized += list(r)
    frame = pd.DataFrame(
        {"forecast": forecast, "realized": realized},
        index=pd.MultiIndex.from_tuples(index, names=["session_date", "symbol"]),
    )
    frame["size"] = 1.0 if size is None else size
    return frame


def test_r2_oos_is_uncentred_against_zero() -> None:
    realized = np.array([0.01, -0.02, 0.03])
    forecast = np.array([0.0, -0.01, 0.01])
    # Σ(r − f)² = 1e-4 + 1e-4 + 4e-4 = 6e-4; Σ r² = 1e-4 + 4e-4 + 9e-4 = 14e-4
    assert evaluation.r2_oos(forecast, realized) == pytest.approx(1 - 6 / 14)
    assert evaluation.r2_oos(np.zeros(3), realized) == 0.0
    # a centred R² would reward a constant equal to the mean; this one does not
    assert evaluation.r2_oos(np.full(3, realized.mean()), realized) != 0.0


def test_rank_ic_matches_scipy_per_date_with_ties() -> None:
    rng = np.random.default_rng(5)
    rows = {}
    for day in (D1, D2, D3):
        f = rng.integers(0, 4, 12).astype(float)  # many ties
        rows[day] = (f, rng.standard_normal(12))
    frame = _frame(rows)
    expected = np.mean([spearmanr(f, r).statistic for f, r in rows.values()])
    assert evaluation.rank_ic(frame) == pytest.approx(expected, abs=1e-12)


def test_rank_ic_skips_constant_dates_and_is_nan_for_a_constant_forecast() -> None:
    rng = np.random.default_rng(1)
    f, r = rng.standard_normal(10), rng.standard_normal(10)
    frame = _frame({D1: (f, r), D2: (np.zeros(10), r)})
    assert evaluation.rank_ic(frame) == pytest.approx(spearmanr(f, r).statistic)
    assert np.isnan(evaluation.rank_ic(_frame({D1: (np.zeros(10), r)})))


def test_decile_long_short_sharpe_by_hand() -> None:
    # Ten stocks a date: each decile is one stock; forecast i ranks stock Si i-th.
    realized = {
        D1: [0.01, 0, 0, 0, 0, 0, 0, 0, 0, 0.03],
        D2: [-0.02, 0, 0, 0, 0, 0, 0, 0, 0, 0.01],
        D3: [0.00, 0, 0, 0, 0, 0, 0, 0, 0, 0.02],
    }
    frame = _frame({d: (list(range(10)), r) for d, r in realized.items()})
    weights = evaluation.decile_weights(frame)
    assert weights.xs("S9", level="symbol").eq(1).all()
    assert weights.xs("S0", level="symbol").eq(-1).all()
    ls = evaluation.long_short_returns(weights, frame["realized"])
    np.testing.assert_allclose(ls.to_numpy(), [0.02, 0.03, 0.02])
    by_hand = np.mean([0.02, 0.03, 0.02]) / np.std([0.02, 0.03, 0.02], ddof=1) * np.sqrt(252)
    assert evaluation.score(frame)["sharpe_ew"] == pytest.approx(by_hand)
    assert evaluation.score(frame)["turnover_ew"] == 0.0  # the same two names every day


def test_value_weights_and_turnover_by_hand() -> None:
    # Twenty stocks: deciles of two. Top = S18, S19; bottom = S0, S1.
    forecast = list(range(20))
    realized = [0.0] * 20
    realized[18], realized[19] = 0.02, 0.05
    realized[0], realized[1] = -0.01, 0.03
    size = [1.0] * 20
    size[18], size[19], size[0], size[1] = 1.0, 3.0, 2.0, 2.0
    first = _frame({D1: (forecast, realized)}, size=size)
    vw = evaluation.decile_weights(first, size="size")
    day = vw.xs(D1, level="session_date")
    assert day[["S18", "S19"]].tolist() == [0.25, 0.75]
    assert day[["S0", "S1"]].tolist() == [-0.5, -0.5]
    assert day.drop(["S0", "S1", "S18", "S19"]).eq(0).all()
    ls = evaluation.long_short_returns(vw, first["realized"])
    assert ls[D1] == pytest.approx(0.25 * 0.02 + 0.75 * 0.05 - 0.5 * (-0.01) - 0.5 * 0.03)
    ew = evaluation.long_short_returns(evaluation.decile_weights(first), first["realized"])
    assert ew[D1] == pytest.approx((0.02 + 0.05) / 2 - (-0.01 + 0.03) / 2)
    # Next day the forecast of S0 and S19 swap: S0 joins the top, S19 the bottom.
    swapped = forecast.copy()
    swapped[0], swapped[19] = 19, 0
    both = _frame({D1: (forecast, realized), D2: (swapped, realized)})
    # S0 goes from −½ to +½ and S19 from +½ to −½; S1 and S18 keep theirs: ½ (1 + 1) = 1
    assert evaluation.turnover(evaluation.decile_weights(both)) == pytest.approx(1.0)


def test_too_few_stocks_or_a_constant_forecast_form_no_portfolio() -> None:
    r = list(np.linspace(-0.01, 0.01, 10))
    assert evaluation.decile_weights(_frame({D1: (list(range(9)), r[:9])})).empty
    scores = evaluation.score(_frame({D1: ([0.0] * 10, r), D2: ([0.0] * 10, r)}))
    assert scores["r2_oos"] == 0.0
    assert all(np.isnan(scores[m]) for m in evaluation.METRICS if m != "r2_oos")


def test_markdown_table() -> None:
    table = pd.DataFrame({"r2_oos": [0.01, 0.0], "rank_ic": [0.02, np.nan]},
                         index=pd.Index(["xgboost", "zero"], name="model"))
    assert evaluation.markdown(table).splitlines() == [
        "| model | r2_oos | rank_ic |",
        "|---|---:|---:|",
        "| xgboost | 0.0100 | 0.0200 |",
        "| zero | 0.0000 | — |",
    ]
