"""The composition root: the resources a stage needs, built once per run and passed in.

A :class:`Ports` holds the ``store`` (the warehouse engine, or a backtest's throwaway
database), the ``broker`` (the configured venue; the simulated one in a backtest), the
``clock`` (fixed at the task's session for live runs, moved by the backtest driver), the
``registry`` of return models (MLflow's live; in a backtest an empty in-memory one, since the
strategy under test holds its own fitted model) and the settings they were built from.
Domain code receives these; only this module decides which implementation a run gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pipelines.clock import Clock, FixedClock
from pipelines.config import Settings
from pipelines.execution.brokers.base import Broker
from pipelines.models.return_model import InMemoryRegistry, Registry

if TYPE_CHECKING:
    from pipelines.models.registry import MLflowRegistry


@dataclass(frozen=True)
class Ports:
    settings: Settings
    store: sa.Engine
    broker: Broker
    clock: Clock
    registry: Registry


def live_registry(settings: Settings) -> MLflowRegistry:
    """The configured model registry (MLflow at ``MLFLOW_TRACKING_URI``); also for the jobs
    that need no broker (training, promotion)."""
    from pipelines.models.registry import MLflowRegistry

    return MLflowRegistry(settings)


def live_ports(store: sa.Engine, settings: Settings, session_date: date) -> Ports:
    """A live run for ``session_date``: the configured broker, a clock fixed at its pre-market."""
    from pipelines.execution.brokers import get_broker

    return Ports(
        settings,
        store,
        get_broker(settings, store),
        FixedClock.premarket(session_date),
        live_registry(settings),
    )


def backtest_ports(store: sa.Engine, settings: Settings, clock: Clock, costs=None) -> Ports:  # noqa: ANN001
    """A backtest: the simulated venue on the backtest's own store, the driver's clock."""
    from pipelines.execution.brokers.simulated import SimulatedBroker

    broker = SimulatedBroker(store, settings, costs)
    return Ports(settings, store, broker, clock, InMemoryRegistry())
