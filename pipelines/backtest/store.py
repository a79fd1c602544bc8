"""Backtest results in the warehouse: ``backtest_runs`` and its equity, weights, trades and
events tables (migrations 0020–0024).

Idempotent by ``run_key``: a save deletes the key's rows (the child tables cascade) and
inserts the new ones in one transaction, so rerunning a backtest leaves one copy.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import SecretStr

from pipelines.backtest.data import MarketData
from pipelines.backtest.engine import BacktestResult
from pipelines.config import Settings
from pipelines.warehouse.engine import copy_rows

#: Settings that cannot change a backtest's numbers: where state lives, vendor endpoints and
#: request budgets, logging and UI links, how orders travel to a real broker. Every other
#: setting (present or added later) is part of the run key; secrets never are.
OPERATIONAL = re.compile(
    r"^(home|warehouse_.*|mlflow_.*|alpaca_.*|yahoo_.*|source_.*|log_.*|pushgateway_url|"
    r"grafana_url|mlflow_ui_url|ingest_batch_symbols|validation_data_docs|.*_retention_days|"
    r"broker|trading_mode|live_trading_confirmed|broker_(max_attempts|backoff_.*|rate_.*)|"
    r"data_source|universe|model_name)$"
)


def is_secret(annotation: Any) -> bool:
    """Whether a setting's type is a secret (``SecretStr``, optional or not)."""
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def result_settings(settings: Settings) -> dict[str, Any]:
    """The settings a backtest's result depends on (see :data:`OPERATIONAL`), JSON-able."""
    values = settings.model_dump(mode="json")
    return {
        name: values[name]
        for name, info in type(settings).model_fields.items()
        if not OPERATIONAL.match(name) and not is_secret(info.annotation)
    }


def run_key(
    params: dict[str, Any],
    data: MarketData,
    settings: Settings | None = None,
    code_version: str = "",
) -> str:
    """A hash of everything the run's numbers depend on: its parameters, the settings
    (:func:`result_settings`), the code version and the data (every bar's values)."""
    whole = {
        "params": params,
        "settings": result_settings(settings) if settings is not None else None,
        "code": code_version,
    }
    digest = hashlib.sha256(json.dumps(whole, sort_keys=True, default=str).encode())
    for name in sorted(data.panels):
        panel = data.panels[name]
        digest.update(name.encode())
        digest.update(",".join(map(str, panel.columns)).encode())
        digest.update(pd.util.hash_pandas_object(panel, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:20]


def _json(value: Any) -> str:
    """JSON for a jsonb column: NaN and infinities (which JSON lacks) become null."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, float | np.floating):
            return float(v) if np.isfinite(v) else None
        if isinstance(v, np.integer):
            return int(v)
        return v

    return json.dumps(clean(value), default=str)


def save(
    engine: sa.Engine,
    key: str,
    result: BacktestResult,
    params: dict[str, Any],
    metrics: dict[str, float],
    monte_carlo: dict[str, Any],
    code_version: str,
    run_id: str,
    report_path: str | None = None,
    mlflow_run_id: str | None = None,
) -> None:
    """Replace the rows of ``key`` with this result, in one transaction."""
    config = result.config
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM backtest_runs WHERE run_key = :k"), {"k": key})
        conn.execute(
            sa.text(
                "INSERT INTO backtest_runs (run_key, strategy, start_date, end_date, oos_start, "
                "params, metrics, monte_carlo, timings, code_version, report_path, "
                "mlflow_run_id, run_id) VALUES (:k, :s, :a, :b, :o, CAST(:p AS jsonb), "
                "CAST(:m AS jsonb), CAST(:mc AS jsonb), CAST(:t AS jsonb), :cv, :rp, :ml, :run)"
            ),
            {
                "k": key,
                "s": config.strategy,
                "a": config.start,
                "b": config.end,
                "o": result.daily.index[0],
                "p": _json(params),
                "m": _json(metrics),
                "mc": _json(monte_carlo),
                "t": _json(result.timings),
                "cv": code_version,
                "rp": report_path,
                "ml": mlflow_run_id,
                "run": run_id,
            },
        )
        daily = result.daily
        copy_rows(
            conn,
            "COPY backtest_equity (run_key, session_date, equity, cash, daily_return, "
            "benchmark_return, gross_exposure, net_exposure, turnover, costs, positions, "
            "rebalanced) FROM STDIN",
            (
                (key, day, *values)
                for day, values in zip(
                    daily.index,
                    daily[
                        [
                            "equity",
                            "cash",
                            "return",
                            "benchmark_return",
                            "gross_exposure",
                            "net_exposure",
                            "turnover",
                            "costs",
                            "positions",
                            "rebalanced",
                        ]
                    ].itertuples(index=False, name=None),
                    strict=True,
                )
            ),
        )
        copy_rows(
            conn,
            "COPY backtest_weights (run_key, session_date, symbol, weight) FROM STDIN",
            ((key, *row) for row in result.weights.itertuples(index=False, name=None)),
        )
        copy_rows(
            conn,
            "COPY backtest_trades (run_key, trade_no, session_date, symbol, side, qty, price, "
            "reference_price, commission, cost) FROM STDIN",
            (
                (key, n, *row)
                for n, row in enumerate(result.trades.itertuples(index=False, name=None))
            ),
        )
        copy_rows(
            conn,
            "COPY backtest_events (run_key, event_no, session_date, event, reason) FROM STDIN",
            (
                (key, n, e["session_date"], e["event"], e["reason"])
                for n, e in enumerate(result.events)
            ),
        )


def tried_sharpes(engine: sa.Engine, start: object, end: object, exclude: str) -> list[float]:
    """Annualized Sharpe ratios of the other configurations stored for the same period.

    They count as the trials that the deflated Sharpe ratio of a new run must beat.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT (metrics->>'sharpe')::float8 FROM backtest_runs WHERE start_date = :a "
                "AND end_date = :b AND run_key <> :k AND metrics->>'sharpe' IS NOT NULL"
            ),
            {"a": start, "b": end, "k": exclude},
        ).scalars()
        return [float(v) for v in rows if v is not None]
