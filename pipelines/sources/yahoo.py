"""The ``yahoo`` source: daily bars and corporate actions from Yahoo Finance through yfinance.

**Which prices.** Yahoo's chart API sends OHLC and volume *adjusted for splits* (not for
dividends), an ``adjclose`` adjusted for both, and the split and dividend events (dividends,
too, restated for later splits). yfinance passes them through with ``auto_adjust=False``
(``Close`` = Yahoo's split-adjusted close, ``Adj Close`` = Yahoo's fully adjusted close) and
``actions=True`` (``Dividends``, ``Stock Splits`` columns). The warehouse stores prices *as they
traded* (as the ``sample`` and ``alpaca`` sources do), so this source undoes Yahoo's split
adjustment with the split events: a bar dated before a split of ratio ``r`` (new shares per old)
is multiplied by ``r`` (volume divided by ``r``), and so is a dividend paid before it. To know
every split after a bar, the series is requested from ``start`` up to now and cut to
``[start, end]`` afterwards. ``Adj Close`` is not stored: adjusted series are derived from the
``corporate_actions`` table (:mod:`pipelines.warehouse.corporate_actions`), which this source
fills through :meth:`YahooSource.fetch_corporate_actions`.

**Transport.** One ``Ticker.history`` call per symbol on a ``requests.Session`` (``session=``;
tests pass one with ``requests-mock``). A response hook on that session takes a rate-limiter token
per HTTP request and turns a 429 or 5xx of the chart API into a retryable error (yfinance would
otherwise log it and return an empty frame); yfinance's own exceptions are switched on
(``yf.config.debug.hide_exceptions = False``) and its network retries stay off, so
:class:`~pipelines.sources.retry.RetryPolicy` is the one bound on attempts. A symbol Yahoo does not
know (no time zone, no prices) is a per-symbol failure
(:class:`~pipelines.sources.base.PartialFetchError`); good symbols' bars still come back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

import pandas as pd
import requests

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ConfigurationError, DataSourceError
from pipelines.ratelimit import TokenBucket, bucket_for
from pipelines.sources.base import BAR_COLUMNS, FetchResult, empty_bars, split_symbols
from pipelines.sources.retry import RetryPolicy, TransientSourceError

log = logging.getLogger(__name__)

ACTION_COLUMNS = ("symbol", "ex_date", "kind", "value", "source")
CHART_PATH = "/v8/finance/chart/"


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else object)
                         for c in ACTION_COLUMNS})  # fmt: skip


@dataclass
class YahooFetch:
    """Bars (as traded) with per-symbol failures, and the splits and dividends seen."""

    result: FetchResult
    actions: pd.DataFrame  # ACTION_COLUMNS: split = new shares per old, dividend = USD/share


class YahooSource:
    """Daily bars from Yahoo Finance (``DATA_SOURCE=yahoo``)."""

    name = "yahoo"

    def __init__(
        self,
        symbols: list[str] | None = None,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        bucket: TokenBucket | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        os.environ.setdefault("YF_DISABLE_CURL_CFFI", "1")  # plain requests: hooks and sessions
        import yfinance as yf

        yf.config.debug.hide_exceptions = False  # errors as exceptions, not log lines
        yf.config.network.retries = 0  # RetryPolicy bounds the attempts
        self._yf = yf
        self._symbols = symbols or []
        self.retry = retry or RetryPolicy()
        self.bucket = bucket or bucket_for("yahoo", 60)
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self.session.hooks["response"].append(self._on_response)

    @classmethod
    def from_settings(cls, settings: Settings) -> YahooSource:
        return cls(
            symbols=settings.universe,
            retry=RetryPolicy.from_settings(settings),
            bucket=bucket_for("yahoo", settings.yahoo_requests_per_minute),
            timeout_s=settings.source_timeout_s,
        )

    def universe(self) -> list[str]:
        """The configured ``UNIVERSE``."""
        if not self._symbols:
            raise ConfigurationError("DATA_SOURCE=yahoo needs UNIVERSE=SYM1,SYM2,… (or --symbols)")
        return list(self._symbols)

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        """As-traded daily bars of sessions in ``[start, end]``; see :class:`PartialFetchError`."""
        return self.fetch(start, end, symbols).result.raise_for_failures(self.name)

    def fetch_corporate_actions(
        self, start: date, end: date, symbols: list[str] | None
    ) -> pd.DataFrame:
        """Splits and dividends with ex-date in ``[start, end]`` (``ACTION_COLUMNS``)."""
        fetched = self.fetch(start, end, symbols)
        fetched.result.raise_for_failures(self.name)
        return fetched.actions

    def fetch(self, start: date, end: date, symbols: list[str] | None) -> YahooFetch:
        """Bars, actions and per-symbol failures for ``[start, end]``."""
        if start > end:
            raise DataSourceError(f"start {start} is after end {end}")
        good, failures = split_symbols(self.universe() if symbols is None else symbols)
        frames, actions = [], []
        for symbol in good:
            try:
                history = self.retry.call(
                    partial(self._history, symbol, start), f"Yahoo history of {symbol}"
                )
            except _SymbolFailed as exc:
                failures[symbol] = str(exc)
                continue
            bars, acts = _as_traded(symbol, history, start, end)
            if bars.empty:
                failures[symbol] = f"Yahoo returned no bars for {symbol} from {start} to {end}"
                continue
            frames.append(bars)
            actions.append(acts)
        bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        acts = pd.concat(actions, ignore_index=True) if actions else empty_actions()
        return YahooFetch(FetchResult(bars, failures), acts)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every HTTP answer takes a token; a chart 429/5xx becomes retryable."""
        self.bucket.acquire()
        if CHART_PATH in response.url and (
            response.status_code == 429 or response.status_code >= 500
        ):
            hint = response.headers.get("Retry-After", "")
            raise TransientSourceError(
                f"Yahoo answered HTTP {response.status_code} for {response.url.split('?')[0]}",
                float(hint) if hint.isdigit() else None,
            )

    def _history(self, symbol: str, start: date) -> pd.DataFrame:
        yf = self._yf
        try:
            return yf.Ticker(symbol, session=self.session).history(
                start=start.isoformat(),
                interval="1d",
                auto_adjust=False,
                actions=True,
                repair=False,
                timeout=self.timeout_s,
            )
        except TransientSourceError:
            raise
        except yf.exceptions.YFRateLimitError as exc:
            raise TransientSourceError(f"Yahoo rate-limited us: {exc}") from exc
        except yf.exceptions.YFTickerMissingError as exc:  # no time zone / no prices
            raise _SymbolFailed(f"Yahoo does not know {symbol} or has no prices: {exc}") from exc
        except requests.HTTPError as exc:  # from an endpoint yfinance checks itself
            status = exc.response.status_code if exc.response is not None else None
            if status == 429 or (status is not None and status >= 500):
                raise TransientSourceError(f"Yahoo answered HTTP {status}") from exc
            raise _SymbolFailed(
                f"Yahoo does not know {symbol} (HTTP {status} for {_path(exc)})"
            ) from exc
        except requests.Timeout as exc:
            raise TransientSourceError(f"Yahoo did not answer in time: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientSourceError(f"could not reach Yahoo: {exc}") from exc
        except (json.JSONDecodeError, requests.JSONDecodeError) as exc:
            raise TransientSourceError(f"Yahoo sent malformed or truncated JSON: {exc}") from exc
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise _SymbolFailed(
                f"Yahoo's answer for {symbol} is not a price series: {exc!r}"
            ) from exc


def _path(exc: requests.RequestException) -> str:
    url = exc.response.url if exc.response is not None else ""
    return url.split("?")[0]


class _SymbolFailed(DataSourceError):
    """This symbol cannot be fetched (unknown, or an answer that is not a price series)."""


def _as_traded(
    symbol: str, history: pd.DataFrame, start: date, end: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Undo Yahoo's split adjustment; cut to ``[start, end]``; the events as action rows."""
    if history is None or history.empty:
        return empty_bars(), empty_actions()
    index = pd.DatetimeIndex(history.index)
    # The vendor's time as yfinance gives it: a naive one is kept naive (ISO text without an
    # offset) for the gate to quarantine, never localized by guess.
    vendor_ts = [t.isoformat() for t in index]
    local = index if index.tz is None else index.tz_convert(calendar.EXCHANGE_TZ)
    days = pd.Index(local.date)
    splits = history.get("Stock Splits", pd.Series(0.0, index=history.index)).fillna(0.0)
    splits = pd.Series(splits.to_numpy(dtype=float), index=days)
    ratio = splits.where(splits > 0, 1.0)
    # Product of the ratios of splits strictly after each day: Yahoo divided by it.
    later = ratio[::-1].cumprod()[::-1].shift(-1, fill_value=1.0)
    dividends = pd.Series(
        history.get("Dividends", pd.Series(0.0, index=history.index)).fillna(0.0).to_numpy(float),
        index=days,
    )
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "session_date": list(days),
            **{c.lower(): history[c].to_numpy(float) * later.to_numpy() for c in
               ("Open", "High", "Low", "Close")},
            "volume": history["Volume"].to_numpy(float) / later.to_numpy(),
        }
    )  # fmt: skip
    frame["vendor_ts"] = vendor_ts
    # Yahoo answers from ``start`` to today: later rows were not asked for and are cut here;
    # a row before ``start`` (the vendor ignoring the request) goes to the gate's window rule.
    frame = frame.loc[frame["session_date"] <= end].reset_index(drop=True)
    if frame.empty:
        return empty_bars(), empty_actions()
    closes = calendar.schedule(min(frame["session_date"]), end)["close"]
    frame["ts"] = pd.to_datetime(frame["session_date"].map(closes), utc=True)
    if index.tz is None:  # no session can be trusted from a naive time
        frame["ts"] = pd.NaT
    frame["session_date"] = frame["session_date"].astype(object)
    rows = []
    for day in days[(days >= start) & (days <= end)]:
        if splits[day] > 0:
            rows.append((symbol, day, "split", float(splits[day]), "yahoo"))
        if dividends[day] > 0:
            rows.append((symbol, day, "dividend", float(dividends[day] * later[day]), "yahoo"))
    actions = pd.DataFrame(rows, columns=list(ACTION_COLUMNS)) if rows else empty_actions()
    return frame[[*BAR_COLUMNS, "vendor_ts"]], actions
