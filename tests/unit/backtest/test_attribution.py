from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import calendar
from pipelines.backtest.attribution import ipca_attribution


def test_returns_made_only_of_factors_leave_nothing_idiosyncratic() -> None:
    rng = np.random.default_rng(0)
    days = calendar.sessions(date(2015, 1, 1), date(2015, 12, 31))[:80]
    symbols = [f"S{i}" for i in range(60)]
    n_chars, k = 4, 2
    gamma, _ = np.linalg.qr(rng.standard_normal((n_chars + 1, k)))
    z = rng.uniform(-0.5, 0.5, (len(days), len(symbols), n_chars))
    factors = rng.normal(0.001, 0.01, (len(days), k))
    close = np.empty((len(days), len(symbols)))
    close[0] = 100.0
    for t in range(1, len(days)):  # r_{t} = z_{t-1}' Γ f_t exactly
        zc = np.concatenate([z[t - 1], np.ones((len(symbols), 1))], axis=1)
        close[t] = close[t - 1] * (1 + zc @ gamma @ factors[t])
    index = pd.MultiIndex.from_product([days, symbols], names=["session_date", "symbol"])
    features = pd.DataFrame(z.reshape(-1, n_chars), index=index, columns=list("abcd"))
    close_frame = pd.DataFrame(close, index=pd.Index(days, name="session_date"), columns=symbols)
    w = rng.dirichlet(np.ones(len(symbols)), len(days))
    weights = pd.DataFrame(
        {
            "session_date": np.repeat(days, len(symbols)),
            "symbol": symbols * len(days),
            "weight": w.ravel(),
        }
    )
    holding = (w[:-1] * (close[1:] / close[:-1] - 1)).sum(axis=1)
    realized = pd.Series(holding[39:] - 0.0001, index=days[40:])  # 1 bp of costs a day

    parts = ipca_attribution(weights, features, close_frame, realized, n_factors=k)
    assert parts["idiosyncratic"].abs().max() < 1e-8
    assert parts["trading_and_costs"].to_numpy() == pytest.approx(-0.0001, abs=1e-12)
    summed = parts[["factor_1", "factor_2", "idiosyncratic", "trading_and_costs"]].sum(axis=1)
    assert summed.to_numpy() == pytest.approx(parts["total"].to_numpy(), abs=1e-12)
