"""Market data for a backtest, held in memory as wide panels, and point-in-time views of it.

Panels are sessions × symbols (``session_date`` index ascending, one column per symbol) of
daily ``open, high, low, close`` (USD) and ``volume`` (shares). The engine never hands a stage
the whole :class:`MarketData`: it hands :meth:`MarketData.as_of` views, which hold only rows
dated on or before the view's date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.errors import MltradeError

FIELDS = ("open", "high", "low", "close", "volume")


class BacktestInputError(MltradeError):
    """A backtest was asked for something its inputs cannot give; nothing was run."""


@dataclass(frozen=True)
class MarketData:
    """Daily bars as wide panels; ``as_of`` is the last session the data knows."""

    panels: dict[str, pd.DataFrame]
    features: pd.DataFrame | None = field(default=None, compare=False)

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> MarketData:
        """From long bars with ``symbol, session_date`` and :data:`FIELDS` columns."""
        missing = [c for c in ("symbol", "session_date", *FIELDS) if c not in bars.columns]
        if missing:
            raise BacktestInputError(f"bars lack columns {missing}")
        frame = bars.assign(session_date=pd.to_datetime(bars["session_date"]).dt.date)
        panels = {
            f: frame.pivot(index="session_date", columns="symbol", values=f)
            .sort_index()
            .astype(float)
            for f in FIELDS
        }
        return cls(panels)

    @classmethod
    def from_warehouse(
        cls, engine: sa.Engine, start: date, end: date, symbols: list[str] | None = None
    ) -> MarketData:
        """Bars in ``[start, end]`` from the warehouse's ``bars`` table (one read)."""
        query = (
            "SELECT symbol, session_date, open, high, low, close, volume FROM bars "
            "WHERE session_date BETWEEN :a AND :b"
        )
        params: dict = {"a": start, "b": end}
        if symbols:
            query += " AND symbol = ANY(:s)"
            params["s"] = symbols
        with engine.connect() as conn:
            bars = pd.read_sql(sa.text(query), conn, params=params)
        if bars.empty:
            raise BacktestInputError(
                f"no bars between {start} and {end}: load them first (`mltrade ingest`)"
            )
        return cls.from_bars(bars)

    @property
    def close(self) -> pd.DataFrame:
        return self.panels["close"]

    @property
    def sessions(self) -> list[date]:
        return list(self.close.index)

    @property
    def symbols(self) -> list[str]:
        return list(self.close.columns)

    def as_of(self, day: date) -> MarketData:
        """The data known at ``day``'s close: every row dated after ``day`` removed."""
        panels = {f: p.loc[:day] for f, p in self.panels.items()}
        features = None
        if self.features is not None:  # date-sorted (see with_features): a slice, not a scan
            features = self.features.loc[:day]
        return MarketData(panels, features)

    def with_features(self, features: pd.DataFrame) -> MarketData:
        """This data with ``features`` (index ``session_date, symbol``) attached, date-sorted."""
        return MarketData(self.panels, features.sort_index())

    def between(self, start: date, end: date) -> MarketData:
        return MarketData({f: p.loc[start:end] for f, p in self.panels.items()})

    def to_bars(self) -> pd.DataFrame:
        """Long bars (``symbol, session_date`` and :data:`FIELDS`), rows with a close only."""
        stacked = pd.DataFrame(
            {f: p.stack(future_stack=True) for f, p in self.panels.items()}
        ).dropna(subset=["close"])
        stacked.index = stacked.index.set_names(["session_date", "symbol"])
        return stacked.reset_index()


class FrameSource:
    """A :class:`pipelines.sources.base.MarketDataSource` serving in-memory bars.

    Synthetic and test markets reach the backtest's store the way vendor data reaches the
    warehouse: through ingest and its validation gate (``validation_runs`` records the
    decision the risk gate's data-quality check reads).
    """

    def __init__(self, data: MarketData, name: str = "backtest") -> None:
        self.name = name
        self._data = data

    def universe(self) -> list[str]:
        return self._data.symbols

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        from pipelines import calendar
        from pipelines.sources.base import BAR_COLUMNS

        bars = self._data.between(start, end).to_bars()
        if symbols is not None:
            bars = bars[bars["symbol"].isin(symbols)]
        closes = calendar.schedule(start, end)["close"]
        bars = bars.assign(ts=bars["session_date"].map(closes))
        bars["ts"] = pd.to_datetime(bars["ts"], utc=True)
        return bars[list(BAR_COLUMNS)].reset_index(drop=True)
