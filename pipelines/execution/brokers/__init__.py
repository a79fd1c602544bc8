"""Brokers behind one Protocol; ``BROKER`` picks one."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.errors import ConfigurationError
from pipelines.execution.brokers.base import Broker


def get_broker(settings: Settings, engine: sa.Engine) -> Broker:
    if settings.broker == "simulated":
        from pipelines.execution.brokers.simulated import SimulatedBroker

        return SimulatedBroker(engine, settings)
    if settings.broker == "alpaca":
        from pipelines.execution.brokers.alpaca import AlpacaBroker

        return AlpacaBroker(settings)
    raise ConfigurationError(f"BROKER={settings.broker} is unknown; use simulated or alpaca")
