"""Corporate actions (splits, cash dividends) and the adjusted price series derived from them.

The warehouse stores bars **as traded** (``bars``) and actions separately
(``corporate_actions``: ``value`` = new shares per old share for a split, USD cash per share as
paid for a dividend). Adjusted series are computed on read, never stored, so a new action does
not rewrite stored history.

**Backward adjustment, CRSP style**: split and dividend multipliers as Yahoo describes its
``Adj Close`` ("adhering to CRSP standards"; checked against recorded yfinance data in
``tests/unit/sources/test_corporate_actions.py``). The latest bars are left as they are; each
action scales every bar *before* its ex-date by a factor:

- split of ratio ``r`` on ex-date ``e``: prices × ``1/r``, volume × ``r``;
- cash dividend ``D`` on ex-date ``e``: prices × ``1 − D / C``, where ``C`` is the as-traded
  close of the last bar before ``e`` (put in post-split shares when a split has the same
  ex-date).

A bar's price factor is the product of the factors of all actions with ex-date after that
bar's ``session_date``; adjusted price = as-traded price × factor. A split leaves no jump in
either series; across a dividend's ex-date the adjusted close-to-close return is
``C1 / (C0 − D)``, close to (not the same as) the total return ``(C1 + D) / C0``. The
split-only series (``dividends=False``) keeps dividends out. ``C`` is the last close in
``bars`` before the ex-date (the previous session's, unless that session is missing from the
bars). A dividend not below ``C`` raises
:class:`~pipelines.errors.DataSourceError`: it is a wrong action, not a factor to apply.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.errors import DataSourceError

ACTION_COLUMNS = ("symbol", "ex_date", "kind", "value", "source")
ADJUSTED_COLUMNS = ("adj_open", "adj_high", "adj_low", "adj_close", "adj_volume")

_UPSERT = """
INSERT INTO corporate_actions (symbol, ex_date, kind, value, source)
VALUES (:symbol, :ex_date, :kind, :value, :source)
ON CONFLICT (symbol, ex_date, kind) DO UPDATE SET value = excluded.value, source = excluded.source
WHERE (corporate_actions.value, corporate_actions.source)
      IS DISTINCT FROM (excluded.value, excluded.source)
"""


def upsert_corporate_actions(conn: sa.Connection, actions: pd.DataFrame) -> int:
    """Merge actions (``ACTION_COLUMNS``); return how many rows were inserted or changed.

    Idempotent: reloading the same actions changes nothing; a restated value replaces the old
    one. Runs in the caller's transaction.
    """
    if actions.empty:
        return 0
    bad = actions.loc[~actions["kind"].isin(["split", "dividend"]) | ~(actions["value"] > 0)]
    if not bad.empty:
        raise DataSourceError(
            f"corporate actions with an unknown kind or a non-positive value: "
            f"{bad.head(5).to_dict('records')}; a split is new shares per old (> 0), a "
            "dividend USD per share (> 0)"
        )
    rows = [
        {
            "symbol": str(r.symbol),
            "ex_date": r.ex_date,
            "kind": str(r.kind),
            "value": float(r.value),
            "source": str(r.source),
        }
        for r in actions[list(ACTION_COLUMNS)].itertuples(index=False)
    ]
    changed = 0
    for row in rows:  # few rows per run (a handful per symbol and year): no COPY needed
        changed += conn.execute(sa.text(_UPSERT), row).rowcount
    return changed


def read_corporate_actions(
    engine: sa.Engine, start: date, end: date, symbols: list[str] | None = None
) -> pd.DataFrame:
    """Actions with ex-date in ``[start, end]``, ordered by symbol then ex-date."""
    query = (
        "SELECT symbol, ex_date, kind, value, source FROM corporate_actions "
        "WHERE ex_date BETWEEN :start AND :end"
    )
    params: dict = {"start": start, "end": end}
    if symbols is not None:
        query += " AND symbol = ANY(:symbols)"
        params["symbols"] = list(symbols)
    with engine.connect() as conn:
        return pd.read_sql(sa.text(query + " ORDER BY symbol, ex_date, kind"), conn, params=params)


def adjusted_prices(
    bars: pd.DataFrame, actions: pd.DataFrame, dividends: bool = True
) -> pd.DataFrame:
    """``bars`` with ``factor`` and ``adj_open … adj_close``, ``adj_volume`` added.

    ``bars`` is a canonical bar frame (as traded); ``actions`` has ``symbol, ex_date, kind,
    value``. ``dividends=False`` gives the split-adjusted series only.
    """
    out = bars.sort_values(["symbol", "session_date"]).reset_index(drop=True)
    price_factor = np.ones(len(out))
    volume_factor = np.ones(len(out))
    if not actions.empty:
        for symbol, acts in actions.groupby("symbol"):
            rows = np.flatnonzero(out["symbol"].to_numpy() == symbol)
            if len(rows) == 0:
                continue
            days = out["session_date"].to_numpy()[rows]
            closes = out["close"].to_numpy(dtype=float)[rows]
            same_day_split = {
                a.ex_date: float(a.value) for a in acts.itertuples() if a.kind == "split"
            }
            for act in acts.itertuples():
                before = days < act.ex_date
                if not before.any():
                    continue
                if act.kind == "split":
                    price_factor[rows[before]] /= float(act.value)
                    volume_factor[rows[before]] *= float(act.value)
                elif act.kind == "dividend" and dividends:
                    previous_close = closes[before][-1]  # bars are sorted by session_date
                    previous_close /= same_day_split.get(act.ex_date, 1.0)
                    if not (0 < act.value < previous_close):
                        raise DataSourceError(
                            f"{symbol}: dividend {act.value} on {act.ex_date} is not below the "
                            f"previous close {previous_close}; check the corporate action"
                        )
                    price_factor[rows[before]] *= 1.0 - float(act.value) / previous_close
    out["factor"] = price_factor
    for column in ("open", "high", "low", "close"):
        out[f"adj_{column}"] = out[column].to_numpy(dtype=float) * price_factor
    out["adj_volume"] = out["volume"].to_numpy(dtype=float) * volume_factor
    return out


def load_corporate_actions(
    engine: sa.Engine, source: object, start: date, end: date, symbols: list[str] | None
) -> int:
    """Fetch ``source``'s splits and dividends with ex-date in ``[start, end]`` and upsert them.

    For a source with ``fetch_corporate_actions`` (``yahoo``, ``alpaca``); others (``sample``:
    its data has no actions) load nothing. One transaction; returns rows inserted or changed.
    """
    fetch = getattr(source, "fetch_corporate_actions", None)
    if fetch is None:
        return 0
    actions = fetch(start, end, symbols)
    with engine.begin() as conn:
        return upsert_corporate_actions(conn, actions)
