"""The composition root: the resources a stage needs, built once per run and passed in.

A :class:`Ports` holds the ``store`` (the warehouse engine, or a backtest's throwaway
database), the ``broker`` (the configured venue; the simulated one in a backtest), the
``clock`` (fixed at the task's session for live runs, moved by the backtest driver) and the
settings they were built from. Domain code receives these; only this module decides which
implementation a run gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.clock import Clock, FixedClock
from pipelines.config import Settings
from pipelines.execution.brokers.base import Broker


@dataclass(frozen=True)
class Ports:
    settings: Settings
    store: sa.Engine
    broker: Broker
    clock: Clock


def live_ports(store: sa.Engine, settings: Settings, session_date: date) -> Ports:
    """A live run for ``session_date``: the configured broker, a clock fixed at its pre-market."""
    from pipelines.execution.brokers import get_broker

    return Ports(settings, store, get_broker(settings, store), FixedClock.premarket(session_date))


def backtest_ports(store: sa.Engine, settings: Settings, clock: Clock, costs=None) -> Ports:  # noqa: ANN001
    """A backtest: the simulated venue on the backtest's own store, the driver's clock."""
    from pipelines.execution.brokers.simulated import SimulatedBroker

    return Ports(settings, store, SimulatedBroker(store, settings, costs), clock)
