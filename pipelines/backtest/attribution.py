"""Factor performance attribution: the part of a backtest's return its IPCA factor exposures
explain, the idiosyncratic rest, and what trading and costs took.

Ex post and descriptive: a restricted IPCA (:mod:`pipelines.models.ipca`, the model code's
own fit) with ``K`` factors is fitted on the backtest period's characteristics (plus a
constant) and next-session returns. For holdings ``w_d`` at the close of d (fractions of
equity), the portfolio's factor exposure is ``β_d = Σᵢ w_{i,d} z_{i,d}ᵀ Γ_β`` and factor k
contributes ``β_{d,k} f_{d+1,k}`` to session d+1. The holdings' own close-to-close return
minus those contributions is *idiosyncratic*; the realized return minus the holdings' return
is *trading and costs* (fills at the open instead of the close, spread, slippage, impact,
fees). Daily simple returns; the parts add up to the realized return exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.models import ipca


def ipca_attribution(
    weights: pd.DataFrame,
    features: pd.DataFrame,
    close: pd.DataFrame,
    realized: pd.Series,
    n_factors: int = 3,
) -> pd.DataFrame:
    """Per session (index of ``realized``): ``factor_1..K``, ``idiosyncratic``,
    ``trading_and_costs`` and ``total`` (= ``realized``).

    ``weights`` is long (``session_date, symbol, weight``) at each close; ``features`` is
    indexed (``session_date, symbol``); ``close`` is sessions × symbols.
    """
    nxt = (close.shift(-1) / close - 1).stack(future_stack=True)
    nxt.index = nxt.index.set_names(["session_date", "symbol"])
    sessions = list(close.index)
    first, last = realized.index[0], realized.index[-1]
    start = sessions[max(0, sessions.index(first) - 1)]
    dates = features.index.get_level_values("session_date")
    rows = features[(dates >= start) & (dates < last)]
    labels = nxt.reindex(rows.index)
    usable = labels.notna().to_numpy()
    rows, labels = rows[usable], labels[usable]
    z = np.column_stack([rows.to_numpy(dtype=float), np.ones(len(rows))])
    codes, uniques = pd.factorize(rows.index.get_level_values("session_date"), sort=True)
    fit = ipca.fit(ipca.moments(z, labels.to_numpy(), codes, len(uniques)), n_factors)
    factor_of = {d: fit.factors[i] for i, d in enumerate(uniques)}

    loadings = pd.DataFrame(z @ fit.gamma_beta, index=rows.index)
    held = weights.set_index(["session_date", "symbol"])["weight"]
    joined = loadings.join(held.rename("w"), how="inner")
    exposure = joined.drop(columns="w").mul(joined["w"], axis=0).groupby(level=0).sum()
    holding = (held * nxt.reindex(held.index)).groupby(level=0).sum()

    previous = {d: p for p, d in zip(sessions[:-1], sessions[1:], strict=True)}
    out = []
    for day, total in realized.items():
        prev = previous.get(day)
        beta = exposure.loc[prev].to_numpy() if prev in exposure.index else np.zeros(n_factors)
        f = factor_of.get(prev, np.zeros(n_factors))
        parts = beta * f
        held_return = float(holding.get(prev, 0.0))
        out.append([*parts, held_return - parts.sum(), float(total) - held_return, float(total)])
    columns = [f"factor_{k + 1}" for k in range(n_factors)]
    return pd.DataFrame(
        out,
        index=realized.index,
        columns=[*columns, "idiosyncratic", "trading_and_costs", "total"],
    )
