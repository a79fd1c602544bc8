"""Market-data sources behind one Protocol; ``DATA_SOURCE`` picks one."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.errors import ConfigurationError
from pipelines.sources.base import MarketDataSource


def get_source(settings: Settings) -> MarketDataSource:
    """The source named by ``settings.data_source``."""
    if settings.data_source == "sample":
        from pipelines.sources.sample import SampleSource

        return SampleSource()
    raise ConfigurationError(
        f"DATA_SOURCE={settings.data_source} is not available yet (issue #3 adds the Alpaca "
        "and Yahoo sources); use DATA_SOURCE=sample"
    )
