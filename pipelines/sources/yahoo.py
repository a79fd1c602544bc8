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
unit tests pass one with ``requests-mock``). ``url`` (``YAHOO_DATA_URL``: a proxy, or the tests'
local server) sends every request of that session to another host, path and query unchanged.
A response hook on that session takes a rate-limiter token per HTTP request and turns a 429 or
5xx of the chart API into a retryable error (yfinance would otherwise log it and return an empty
frame); yfinance's own exceptions are switched on (``yf.config.debug.hide_exceptions = False``)
and its network retries stay off, so :class:`~pipelines.sources.retry.RetryPolicy` is the one
bound on attempts. A symbol Yahoo does not know (no time zone, no prices) or that has no bar in
the window is a per-symbol failure (:class:`~pipelines.sources.base.PartialFetchError`,
``no_data``: ``EMPTY_SYMBOL_POLICY`` applies); good symbols' bars still come back, and its
actions are simply none. Ingest asks for actions, then bars: the actions fetch keeps each
symbol's answer for the bars fetch, so a symbol costs one history request, not two.

**Raw first, as far as yfinance allows.** The same hook keeps each chart answer as Yahoo sent
it, with its ``Date`` header. yfinance's frame decides which sessions there are (its time-zone
handling); the values come from Yahoo's items: a value that is not a JSON number (null, text,
a bool) reaches the gate as sent (yfinance would turn a null volume into 0 and ``"12.5"`` into
12.5), every item of a session Yahoo sent twice becomes a row (yfinance keeps one, silently),
an item without a time becomes a row without one, and the ``Date`` header becomes
``vendor_clock`` (a bar of a session that had not closed when Yahoo answered is still forming).
Each row carries its item in ``raw``. What yfinance still decides before us is listed in
docs/sources.md.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ConfigurationError, DataSourceError
from pipelines.ratelimit import TokenBucket, bucket_for
from pipelines.sources.base import BAR_COLUMNS, FetchResult, empty_bars, split_symbols
from pipelines.sources.retry import RetryPolicy, TransientSourceError

log = logging.getLogger(__name__)

ACTION_COLUMNS = ("symbol", "ex_date", "kind", "value", "source")
CHART_PATH = "/v8/finance/chart/"
QUOTE = ("open", "high", "low", "close", "volume")  # Yahoo's quote arrays, named as our columns
# The bar frame plus the vendor columns Yahoo fills (it sends no VWAP or trade count).
YAHOO_COLUMNS = (*BAR_COLUMNS, "vendor_ts", "vendor_clock", "raw")


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else object)
                         for c in ACTION_COLUMNS})  # fmt: skip


@dataclass(frozen=True)
class _Answer:
    """One chart answer as Yahoo sent it: the parsed JSON (None if it was not JSON) and the
    ``Date`` header (Yahoo's clock)."""

    document: Any
    clock: str | None


class _Rebase(HTTPAdapter):
    """Sends each request to ``base`` instead of its host, path and query unchanged."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


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
        url: str = "",
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
        if url:  # YAHOO_DATA_URL: every Yahoo host (https://…yahoo.com) goes there instead
            self.session.mount("https://", _Rebase(url))
        self.session.hooks["response"].append(self._on_response)
        self._answers: dict[str, _Answer] = {}  # symbol -> its last chart data answer
        # (symbol, start, end) -> outcome held by fetch(keep=True) for the next fetch
        self._kept: dict[
            tuple[str, date, date], tuple[pd.DataFrame, pd.DataFrame] | _SymbolFailed
        ] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> YahooSource:
        return cls(
            symbols=settings.universe,
            retry=RetryPolicy.from_settings(settings),
            bucket=bucket_for("yahoo", settings.yahoo_requests_per_minute),
            timeout_s=settings.source_timeout_s,
            url=settings.yahoo_data_url,
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
        """Splits and dividends with ex-date in ``[start, end]`` (``ACTION_COLUMNS``).

        A symbol Yahoo fails on has no actions here (as Alpaca's actions endpoint answers
        nothing for a symbol it does not know): :meth:`fetch_daily_bars` names it, so one
        unknown symbol does not stop the others' bars from loading. Failures of the whole
        batch (Yahoo down after every retry) still raise.

        Each symbol's answer is kept for the next :meth:`fetch_daily_bars` of the same window
        (ingest asks for actions, then bars): one request per symbol, not two.
        """
        return self.fetch(start, end, symbols, keep=True).actions

    def fetch(
        self, start: date, end: date, symbols: list[str] | None, keep: bool = False
    ) -> YahooFetch:
        """Bars, actions and per-symbol failures for ``[start, end]``.

        ``keep``: hold each symbol's outcome for the next call with the same window, which
        uses it instead of asking Yahoo again (once).
        """
        if start > end:
            raise DataSourceError(f"start {start} is after end {end}")
        good, failures = split_symbols(self.universe() if symbols is None else symbols)
        frames, actions, no_data = [], [], set()
        for symbol in good:
            got = self._kept.pop((symbol, start, end), None)
            if got is None:
                got = self._fetch_one(symbol, start, end)
            if keep:
                self._kept[(symbol, start, end)] = got
            if isinstance(got, _SymbolFailed):
                failures[symbol] = str(got)
                if got.no_data:
                    no_data.add(symbol)
                continue
            bars, acts = got
            actions.append(acts)
            if bars.empty:
                failures[symbol] = f"Yahoo returned no bars for {symbol} from {start} to {end}"
                no_data.add(symbol)
                continue
            frames.append(bars)
        bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        acts = pd.concat(actions, ignore_index=True) if actions else empty_actions()
        return YahooFetch(FetchResult(bars, failures, no_data), acts)

    def _fetch_one(
        self, symbol: str, start: date, end: date
    ) -> tuple[pd.DataFrame, pd.DataFrame] | _SymbolFailed:
        """(bars, actions) of one symbol, or why Yahoo failed on it."""
        self._answers.pop(symbol, None)
        try:
            history = self.retry.call(
                partial(self._history, symbol, start), f"Yahoo history of {symbol}"
            )
        except _SymbolFailed as exc:
            return exc
        return _as_traded(symbol, history, start, end, self._answers.pop(symbol, None))

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every HTTP answer takes a token; a chart 429/5xx becomes retryable; a chart data
        answer is kept as sent (see the module docstring)."""
        self.bucket.acquire()
        if CHART_PATH not in response.url:
            return
        if response.status_code == 429 or response.status_code >= 500:
            hint = response.headers.get("Retry-After", "")
            raise TransientSourceError(
                f"Yahoo answered HTTP {response.status_code} for {response.url.split('?')[0]}",
                float(hint) if hint.isdigit() else None,
            )
        parts = urlsplit(response.url)
        if response.status_code == 200 and "period1=" in parts.query:
            try:
                document = json.loads(response.content)
            except ValueError:  # yfinance raises on it too (retried as truncated JSON)
                document = None
            symbol = unquote(parts.path.rsplit("/", 1)[-1]).upper()
            self._answers[symbol] = _Answer(document, response.headers.get("Date"))

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
            answer = self._answers.get(symbol)
            if answer is not None and not _is_chart(answer.document):  # not "no data"
                raise _SymbolFailed(
                    f"Yahoo's answer for {symbol} is not a chart: {str(answer.document)[:80]}"
                ) from exc
            raise _SymbolFailed(
                f"Yahoo does not know {symbol} or has no prices: {exc}", no_data=True
            ) from exc
        except requests.HTTPError as exc:  # from an endpoint yfinance checks itself
            status = exc.response.status_code if exc.response is not None else None
            if status == 429 or (status is not None and status >= 500):
                raise TransientSourceError(f"Yahoo answered HTTP {status}") from exc
            raise _SymbolFailed(  # 404: Yahoo's "No data found, symbol may be delisted"
                f"Yahoo does not know {symbol} (HTTP {status} for {_path(exc)})",
                no_data=status == 404,
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


def _is_chart(document: Any) -> bool:
    """Whether ``document`` is a chart answer (prices, or Yahoo saying it has none)."""
    chart = document.get("chart") if isinstance(document, dict) else None
    return isinstance(chart, dict) and "result" in chart


def _path(exc: requests.RequestException) -> str:
    url = exc.response.url if exc.response is not None else ""
    return url.split("?")[0]


class _SymbolFailed(DataSourceError):
    """This symbol cannot be fetched (unknown, or an answer that is not a price series).

    ``no_data``: Yahoo said it has nothing for the symbol (``EMPTY_SYMBOL_POLICY`` applies)."""

    def __init__(self, message: str, no_data: bool = False) -> None:
        super().__init__(message)
        self.no_data = no_data


def _as_traded(
    symbol: str,
    history: pd.DataFrame,
    start: date,
    end: date,
    answer: _Answer | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Undo Yahoo's split adjustment; cut to ``[start, end]``; the events as action rows.

    yfinance's ``history`` gives the sessions; ``answer`` (the chart as Yahoo sent it) the
    values, one row per item Yahoo sent for a session (see the module docstring). Without
    ``answer`` the values are yfinance's.
    """
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
    sent = _items_by_day(answer)
    rows: list[dict[str, Any]] = []
    for k, day in enumerate(days):
        # Yahoo answers from ``start`` to today: later rows were not asked for and are cut
        # here; a row before ``start`` (the vendor ignoring the request) goes to the gate's
        # window rule.
        if pd.isna(day) or day > end:  # NaT: an item without a time (added below)
            continue
        fallback = {c: history[c.title()].iloc[k] for c in QUOTE}
        items: list[dict[str, Any] | None] = list(sent.get(day, [])) or [None]
        for item in items:
            values = fallback if item is None else item
            rows.append(
                {"symbol": symbol, "session_date": day, "vendor_ts": vendor_ts[k], "raw": item,
                 **{c: _as_sent(values.get(c), float(later.iloc[k]), c) for c in QUOTE}}
            )  # fmt: skip
    for item in sent.get(None, []):  # no usable time: the gate names it (vendor_time_ok)
        rows.append(
            {"symbol": symbol, "session_date": None, "vendor_ts": item.get("timestamp"),
             "raw": item, **{c: _as_sent(item.get(c), 1.0, c) for c in QUOTE}}
        )  # fmt: skip
    if not rows:
        return empty_bars(), empty_actions()
    frame = pd.DataFrame(rows)
    known = [d for d in frame["session_date"] if d is not None]
    if known:
        closes = calendar.schedule(min(known), end)["close"]
        frame["ts"] = pd.to_datetime(frame["session_date"].map(closes), utc=True)
    else:
        frame["ts"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    if index.tz is None:  # no session can be trusted from a naive time
        frame["ts"] = pd.NaT
    frame["session_date"] = frame["session_date"].astype(object)
    clock = answer.clock if answer is not None else None
    frame["vendor_clock"] = pd.to_datetime(
        pd.Series([clock] * len(frame), dtype=object), utc=True, errors="coerce",
        format="%a, %d %b %Y %H:%M:%S GMT",
    )  # fmt: skip
    actions = []
    for day in (d for d in days if not pd.isna(d) and start <= d <= end):
        if splits[day] > 0:
            actions.append((symbol, day, "split", float(splits[day]), "yahoo"))
        if dividends[day] > 0:
            actions.append((symbol, day, "dividend", float(dividends[day] * later[day]), "yahoo"))
    acts = pd.DataFrame(actions, columns=list(ACTION_COLUMNS)) if actions else empty_actions()
    return frame[list(YAHOO_COLUMNS)], acts


def _as_sent(value: Any, later: float, column: str) -> Any:
    """A number as traded (Yahoo divided prices by ``later``, multiplied volume); anything
    else (null, text, a bool) exactly as sent, for the gate to name."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    return float(value) / later if column == "volume" else float(value) * later


def _items_by_day(answer: _Answer | None) -> dict[date | None, list[dict[str, Any]]]:
    """Yahoo's items by New York date (None: no usable time), in the order sent.

    An item whose five values are all null is Yahoo's placeholder for a day without trades
    (yfinance drops those rows too): not a bar. An answer that is not a chart gives nothing.
    """
    try:
        result = answer.document["chart"]["result"][0] if answer is not None else None
        stamps = list(result["timestamp"]) if result is not None else []
        quote = result["indicators"]["quote"][0] if result is not None else {}
    except (KeyError, IndexError, TypeError):
        return {}
    out: dict[date | None, list[dict[str, Any]]] = {}
    for k, stamp in enumerate(stamps):
        item = {"timestamp": stamp}
        for key in QUOTE:
            column = quote.get(key)
            item[key] = column[k] if isinstance(column, list) and k < len(column) else None
        if all(item[key] is None for key in QUOTE):
            continue
        day = None
        if isinstance(stamp, numbers.Real) and not isinstance(stamp, bool) and math.isfinite(stamp):
            day = pd.Timestamp(stamp, unit="s", tz="UTC").tz_convert(calendar.EXCHANGE_TZ).date()
        out.setdefault(day, []).append(item)
    return out
