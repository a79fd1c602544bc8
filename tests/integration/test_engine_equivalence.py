"""The contract between the live path and the backtest: the same sessions, the same model and
settings give the same orders, fills, positions and equity.

Live: ``jobs.rebalance`` day by day on the warehouse with the simulated broker. Backtest:
:func:`pipelines.backtest.engine.replay_sessions` over the same sessions on its own throwaway
database, predicting with the same registered @champion.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines import calendar, jobs
from pipelines.backtest.engine import ledger_snapshot, replay_sessions
from pipelines.execution.brokers.simulated import SimulatedBroker
from pipelines.runtime import live_registry
from pipelines.session import champion_predictor
from pipelines.sources.sample import FIRST_SESSION, SampleSource
from pipelines.warehouse.bars import read_closes

pytestmark = pytest.mark.slow
SESSIONS = calendar.sessions(date(2010, 7, 6), date(2010, 7, 8))  # three sessions
TRAIN_AS_OF = date(2010, 6, 30)


def _live_equity(warehouse, settings, day: date) -> float:
    broker = SimulatedBroker(warehouse, settings)
    held = {s: float(q) for s, q in broker.get_positions().items()}
    closes = read_closes(warehouse, day, day, list(held)).iloc[-1]
    return broker.get_cash() + sum(q * float(closes[s]) for s, q in held.items())


def test_the_backtest_replays_the_live_rebalance_exactly(
    warehouse, load_sample_bars, monkeypatch
) -> None:
    monkeypatch.setenv("MAX_WEIGHT", "0.1")
    monkeypatch.setenv("TRAIN_WINDOW_DAYS", "120")
    from pipelines.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    symbols = SampleSource().universe()[:30]
    load_sample_bars(symbols)
    jobs.build_features(None, None, "equivalence")
    jobs.train_model(TRAIN_AS_OF, "equivalence")  # the first version becomes @champion

    equity = []
    for day in SESSIONS:
        jobs.rebalance(day, f"live-{day}")
        equity.append(_live_equity(warehouse, settings, day))
    orders, fills, positions = ledger_snapshot(warehouse)
    assert len(fills) > 0 and len(positions) > 0  # something traded: the test can fail

    predictor = champion_predictor(live_registry(settings), settings.model_name)
    replayed = replay_sessions(settings, warehouse, SESSIONS, predictor, symbols, FIRST_SESSION)
    assert replayed.events == []
    pd.testing.assert_frame_equal(replayed.orders, orders)
    pd.testing.assert_frame_equal(replayed.fills, fills)
    pd.testing.assert_frame_equal(replayed.positions, positions)
    assert replayed.daily["equity"].tolist() == pytest.approx(equity, rel=1e-12)
    get_settings.cache_clear()
