"""The market-data source contract.

A source returns daily bars as the *canonical bar frame*, one row per (symbol, session):

=============  ==========================  ==============================================
column         dtype                       meaning
=============  ==========================  ==============================================
symbol         str                         upper-case ticker as the vendor spells it
ts             datetime64[UTC]             the session's close (13:00 New York on early closes)
session_date   object (datetime.date)      the NYSE session date
open .. close  float64                     US dollars, unadjusted, as the vendor reports them
volume         float64                     shares
=============  ==========================  ==============================================

A vendor source may add the optional :data:`VENDOR_COLUMNS` (the vendor's raw values).
Sources do not clean data: the validation gate decides what is loaded and what is quarantined.

**Partial failures.** A vendor source fetches many symbols per batch. When some symbols fail
(unknown to the vendor, refused, not a ticker at all) and others succeed, the good bars are not
thrown away: :class:`PartialFetchError` (a :class:`DataSourceError`) carries them in
``.result.bars`` and names each failed symbol with its reason in ``.result.failures``. A caller
that does nothing special therefore fails closed (nothing loaded, every bad symbol named); ingest
can catch it, load ``.result.bars`` through the gate and record ``.result.failures``. A failure of
the whole batch (bad credentials, the vendor down after every retry) is a plain
:class:`DataSourceError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import pandas as pd

from pipelines.errors import DataSourceError

BAR_COLUMNS = ("symbol", "ts", "session_date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
# Optional columns of a source that keeps what the vendor sent (see
# pipelines/validation/vendor.py): the raw bar time, VWAP, trade count, the vendor's clock and
# the vendor's item itself. The gate checks them when present; the warehouse stores none of
# them in ``bars`` (``raw`` goes with a quarantined row).
VENDOR_COLUMNS = ("vendor_ts", "vwap", "trade_count", "vendor_clock", "raw")

# Upper-case letters and digits, with "." or "-" or "/" for share classes (BRK.B, BF-B): no
# quote, semicolon, space or path component ever reaches a vendor URL or a query.
_TICKER = re.compile(r"^[A-Z0-9]{1,10}([./-][A-Z0-9]{1,5})?$")


def empty_bars() -> pd.DataFrame:
    """A canonical bar frame with no rows (and the right dtypes)."""
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[ns, UTC]"),
            "session_date": pd.Series(dtype=object),
            **{c: pd.Series(dtype="float64") for c in (*PRICE_COLUMNS, "volume")},
        }
    )[list(BAR_COLUMNS)]


def split_symbols(symbols: list[str]) -> tuple[list[str], dict[str, str]]:
    """(well-formed tickers, {malformed: reason}): malformed ones are never sent to a vendor."""
    good: list[str] = []
    bad: dict[str, str] = {}
    for symbol in symbols:
        if _TICKER.match(symbol):
            if symbol not in good:
                good.append(symbol)
        else:
            bad[symbol] = (
                f"{symbol!r} is not a ticker (upper-case letters and digits, optionally one "
                "'.', '-' or '/' share-class suffix); it was not sent to the vendor"
            )
    return good, bad


@dataclass
class FetchResult:
    """Bars that came back, and each requested symbol that failed with the reason why."""

    bars: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)
    # Failed symbols whose only problem is that the vendor sent no bar at all (an unknown
    # symbol, or nothing traded): ingest fails or records them per EMPTY_SYMBOL_POLICY.
    no_data: set[str] = field(default_factory=set)

    def raise_for_failures(self, vendor: str) -> pd.DataFrame:
        """The bars, or :class:`PartialFetchError` (carrying this result) if any symbol failed."""
        if self.failures:
            raise PartialFetchError(vendor, self)
        return self.bars


class PartialFetchError(DataSourceError):
    """Some symbols failed; ``.result.bars`` holds the good ones' bars, ``.result.failures``
    the reason per failed symbol."""

    def __init__(self, vendor: str, result: FetchResult) -> None:
        reasons = "; ".join(f"{s}: {r}" for s, r in sorted(result.failures.items()))
        super().__init__(
            f"{vendor}: {len(result.failures)} symbol(s) failed ({reasons}). The "
            f"{len(result.bars)} bars of the other symbols are in .result.bars; fix or drop "
            "the failed symbols (UNIVERSE / --symbols) and rerun"
        )
        self.result = result


class MarketDataSource(Protocol):
    """A vendor of daily bars (``sample``, ``yahoo``, ``alpaca``)."""

    name: str

    def universe(self) -> list[str]:
        """Symbols the source offers."""
        ...

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        """Bars for sessions in ``[start, end]`` (all offered symbols when ``symbols`` is None)."""
        ...
