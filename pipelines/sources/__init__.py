"""Market-data sources behind one Protocol; ``DATA_SOURCE`` picks one (docs/sources.md)."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.sources.base import MarketDataSource


def get_source(settings: Settings) -> MarketDataSource:
    """The source named by ``settings.data_source`` (``sample``, ``alpaca`` or ``yahoo``)."""
    if settings.data_source == "alpaca":
        from pipelines.sources.alpaca import AlpacaSource

        return AlpacaSource.from_settings(settings)
    if settings.data_source == "yahoo":
        from pipelines.sources.yahoo import YahooSource

        return YahooSource.from_settings(settings)
    from pipelines.sources.sample import SampleSource

    return SampleSource()
