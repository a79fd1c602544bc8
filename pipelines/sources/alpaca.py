"""The ``alpaca`` source: historical bars from Alpaca's market-data API through alpaca-py.

Daily bars (``fetch_daily_bars``) and minute bars (``fetch_minute_bars``) share one code path
(:meth:`AlpacaSource.fetch`, a ``timeframe`` parameter).

- **Prices are unadjusted**: requests set ``adjustment=raw``. The warehouse keeps prices as they
  traded and derives adjusted series from the ``corporate_actions`` table
  (:mod:`pipelines.warehouse.corporate_actions`). Asking Alpaca for ``split``/``all`` would
  restate every past bar each time a new split or dividend happens, so reloading an old
  interval would silently rewrite history and features computed earlier would no longer match.
- ``ts`` of a daily bar is the NYSE session close in UTC from :mod:`pipelines.calendar` (Alpaca
  stamps a daily bar at midnight New York, the session's *start*); ``session_date`` is that
  bar's New York date. A minute bar's ``ts`` is its end (Alpaca's timestamp + one minute).
- Feed: ``ALPACA_DATA_FEED`` (``iex`` on the free plan, ``sip`` with a subscription).
- **Pagination is ours**: alpaca-py's ``get_stock_bars`` follows ``next_page_token`` in a loop
  with no guard against a repeated token and no hook to throttle each page, so pages are
  requested one by one through the client's own ``get`` (same auth headers, same error types).
  Every page takes a token from the rate limiter and is retried on its own; a repeated page
  token is reported, never looped on.
- **Raw first**: bars are *not* parsed with alpaca-py's ``Bar`` model. Its pydantic fields
  repair what the vendor sent before anyone can judge it (``"12.5"`` becomes 12.5, an epoch
  integer or a naive time becomes a datetime, ``vw``/``n`` are kept but never checked) and one
  malformed field raises for the whole page; it also costs a model object per bar. Each bar's
  JSON values go into the frame as sent (:func:`bars_frame`): prices, volume, ``vw`` and ``n``
  as JSON numbers or whatever else came, ``t`` as its text in ``vendor_ts``, the item itself in
  ``raw`` and the response's ``Date`` header in ``vendor_clock``; the validation gate judges
  each row (pipelines/validation/vendor.py) and a bad field quarantines only its row.
  Corporate actions, a handful per symbol and year, are still read with alpaca-py's models.
- **Retries**: alpaca-py retries 429/504 itself (3 times, 3 s apart) and sets no HTTP timeout.
  Its data client has no constructor argument for either, so :class:`_BoundedClient` switches
  its retries off and gives its session a timeout; :class:`~pipelines.sources.retry.RetryPolicy`
  is then the only retry layer and ``SOURCE_RETRY_ATTEMPTS`` the real bound.
- **Failures per symbol**: a symbol that is not a ticker is never sent; a symbol Alpaca rejects
  (4xx) is isolated by retrying its chunk one symbol at a time; a symbol with no bars is named.
  Good symbols' bars always come back (see :class:`~pipelines.sources.base.PartialFetchError`).
  Bad credentials (401/403) fail the whole fetch.

Credentials come from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` (``SecretStr``: never logged,
never in an error message).
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.models.corporate_actions import (
    CashDividend,
    CorporateActionsSet,
    ForwardSplit,
    ReverseSplit,
)
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from pydantic import SecretStr, ValidationError

from pipelines import calendar
from pipelines.config import Settings
from pipelines.errors import ConfigurationError, DataSourceError
from pipelines.ratelimit import TokenBucket, bucket_for
from pipelines.sources.base import (
    BAR_COLUMNS,
    VENDOR_COLUMNS,
    FetchResult,
    PartialFetchError,
    empty_bars,
    split_symbols,
)
from pipelines.sources.rawtime import vendor_times
from pipelines.sources.retry import RetryPolicy, TransientSourceError

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo(calendar.EXCHANGE_TZ)
SYMBOLS_PER_REQUEST = 100  # keeps the query string short; Alpaca pages across symbols anyway
PAGE_LIMIT = 10_000  # Alpaca's maximum items per page
MAX_PAGES = 100_000
ACTION_COLUMNS = ("symbol", "ex_date", "kind", "value", "source")


class _TimeoutSession(requests.Session):
    """A session whose requests time out (alpaca-py passes no timeout: it would wait forever)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.last_date: str | None = None

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout_s)
        response = super().request(*args, **kwargs)
        self.last_date = response.headers.get("Date")  # the vendor's clock, for the gate
        return response


class _BoundedClient(StockHistoricalDataClient):
    """alpaca-py's data client with its own retries off and a timeout on every request."""

    def __init__(self, api_key: str, secret_key: str, url: str | None, timeout_s: float) -> None:
        super().__init__(api_key=api_key, secret_key=secret_key, url_override=url)
        # alpaca-py 0.44: RESTClient keeps these as attributes; the data client has no
        # parameter for them. tests/unit/sources check a 429 costs exactly one request.
        self._retry = 0
        self._session = _TimeoutSession(timeout_s)


class _BoundedActionsClient(CorporateActionsClient):
    """alpaca-py's corporate-actions client (``/v1``), bounded like :class:`_BoundedClient`."""

    def __init__(self, api_key: str, secret_key: str, url: str | None, timeout_s: float) -> None:
        super().__init__(api_key=api_key, secret_key=secret_key, url_override=url)
        self._retry = 0
        self._session = _TimeoutSession(timeout_s)


def _action_rows(raw: dict[str, Any], asked: set[str]) -> list[tuple[str, date, str, float, str]]:
    """Split and cash-dividend rows of one corporate-actions page, parsed by alpaca-py's models."""
    rows: list[tuple[str, date, str, float]] = []
    try:
        parsed = CorporateActionsSet(raw).data
    except (ValidationError, TypeError, AttributeError) as exc:
        raise DataSourceError(f"Alpaca sent a malformed corporate action: {exc}") from exc
    for action in [*parsed.get("forward_splits", []), *parsed.get("reverse_splits", [])]:
        assert isinstance(action, ForwardSplit | ReverseSplit)
        if action.old_rate <= 0:
            raise DataSourceError(f"Alpaca sent a split with old_rate {action.old_rate}: {action}")
        rows.append((action.symbol, action.ex_date, "split", action.new_rate / action.old_rate))
    for cash in parsed.get("cash_dividends", []):
        assert isinstance(cash, CashDividend)
        rows.append((cash.symbol, cash.ex_date, "dividend", cash.rate))
    return [(*row, "alpaca") for row in rows if row[0] in asked]


class _ChunkRejected(Exception):
    """Alpaca refused the request's parameters (a 4xx other than 401/403/429)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def _retry_after(response: requests.Response | None) -> float | None:
    """Seconds to wait from a 429's ``Retry-After`` or ``X-RateLimit-Reset`` (epoch s)."""
    if response is None:
        return None
    if response.headers.get("Retry-After", "").isdigit():
        return float(response.headers["Retry-After"])
    reset = response.headers.get("X-RateLimit-Reset", "")
    if reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _body(error: APIError) -> str:
    text = str(error)
    return text if len(text) <= 300 else text[:300] + "…"


class AlpacaSource:
    """Bars from Alpaca's historical market-data API (``DATA_SOURCE=alpaca``)."""

    name = "alpaca"

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        feed: str = "iex",
        url: str | None = None,
        retry: RetryPolicy | None = None,
        bucket: TokenBucket | None = None,
        timeout_s: float = 30.0,
        symbols: list[str] | None = None,
        symbols_per_request: int = SYMBOLS_PER_REQUEST,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        if not api_key or not secret_key:
            raise ConfigurationError(
                "DATA_SOURCE=alpaca needs ALPACA_API_KEY and ALPACA_SECRET_KEY (in .env or the "
                "environment; under Airflow, the alpaca_data connection: see docs/sources.md)"
            )
        self.feed = DataFeed(feed)
        self.retry = retry or RetryPolicy()
        self.bucket = bucket or bucket_for("alpaca", 200)
        self.symbols_per_request = symbols_per_request
        self.page_limit = page_limit
        self._symbols = symbols or []
        self._client = _BoundedClient(api_key, secret_key, url or None, timeout_s)
        self._actions_client = _BoundedActionsClient(api_key, secret_key, url or None, timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> AlpacaSource:
        return cls(
            api_key=settings.alpaca_api_key.get_secret_value(),
            secret_key=settings.alpaca_secret_key.get_secret_value(),
            feed=settings.alpaca_data_feed,
            url=settings.alpaca_data_url or None,
            retry=RetryPolicy.from_settings(settings),
            bucket=bucket_for("alpaca", settings.alpaca_requests_per_minute),
            timeout_s=settings.source_timeout_s,
            symbols=settings.universe,
        )

    def universe(self) -> list[str]:
        """The configured ``UNIVERSE`` (Alpaca lists thousands of assets: choose yours)."""
        if not self._symbols:
            raise ConfigurationError(
                "DATA_SOURCE=alpaca needs UNIVERSE=SYM1,SYM2,… (or --symbols): Alpaca offers "
                "thousands of symbols and fetching all of them is not what you want"
            )
        return list(self._symbols)

    def fetch_daily_bars(self, start: date, end: date, symbols: list[str] | None) -> pd.DataFrame:
        """Daily bars of sessions in ``[start, end]``; see :class:`PartialFetchError`."""
        return self.fetch(start, end, symbols, TimeFrame.Day).raise_for_failures(self.name)

    def fetch_minute_bars(
        self, start: date, end: date, symbols: list[str] | None, minutes: int = 1
    ) -> pd.DataFrame:
        """``minutes``-minute bars of New York dates ``[start, end]`` (``ts`` = bar end, UTC)."""
        timeframe = TimeFrame(minutes, TimeFrameUnit.Minute)
        return self.fetch(start, end, symbols, timeframe).raise_for_failures(self.name)

    def fetch(
        self, start: date, end: date, symbols: list[str] | None, timeframe: TimeFrame
    ) -> FetchResult:
        """Bars of New York dates ``[start, end]`` at ``timeframe``, and failures per symbol."""
        if start > end:
            raise DataSourceError(f"start {start} is after end {end}")
        good, failures = split_symbols(self.universe() if symbols is None else symbols)
        raw: dict[str, list[tuple[Any, str | None]]] = {}
        chunks = [
            good[i : i + self.symbols_per_request]
            for i in range(0, len(good), self.symbols_per_request)
        ]
        while chunks:
            chunk = chunks.pop(0)
            try:
                got, chunk_failures = self._fetch_chunk(chunk, start, end, timeframe)
            except _ChunkRejected as exc:
                if len(chunk) > 1:  # find the symbol(s) Alpaca refuses: one request each
                    chunks[:0] = [[s] for s in chunk]
                    continue
                status = f"HTTP {exc.status}" if exc.status else "no HTTP error"
                failures[chunk[0]] = f"Alpaca refused it ({status}): {exc}"
                continue
            raw.update(got)
            failures.update(chunk_failures)
        for symbol in good:
            if symbol not in raw and symbol not in failures:
                failures[symbol] = (
                    f"Alpaca returned no bars from {start} to {end} (feed={self.feed.value}): "
                    "a symbol Alpaca does not know, or one not traded in that interval"
                )
        no_data = {s for s in good if s not in raw and s in failures and "no bars" in failures[s]}
        return FetchResult(bars_frame(raw, timeframe), failures, no_data)

    def _fetch_chunk(
        self, chunk: list[str], start: date, end: date, timeframe: TimeFrame
    ) -> tuple[dict[str, list[tuple[Any, str | None]]], dict[str, str]]:
        """Raw items per symbol (each with the ``Date`` header of its page), and failures."""
        request = StockBarsRequest(
            symbol_or_symbols=chunk,
            timeframe=timeframe,
            start=datetime(start.year, start.month, start.day, tzinfo=NEW_YORK),
            end=datetime(end.year, end.month, end.day, 23, 59, 59, tzinfo=NEW_YORK),
            adjustment=Adjustment.RAW,
            feed=self.feed,
        )
        params = {
            k: str(v.value) if hasattr(v, "value") else v
            for k, v in request.to_request_fields().items()
        }
        params["limit"] = self.page_limit
        asked = set(chunk)
        bars: dict[str, list[tuple[Any, str | None]]] = {}
        failures: dict[str, str] = {}
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            what = f"Alpaca bars {chunk[0]}…{chunk[-1]} ({len(chunk)} symbols)"
            page = self.retry.call(partial(self._get_page, params, token), what)
            clock = getattr(self._client._session, "last_date", None)
            for symbol, items in page["bars"].items():
                if symbol not in asked:
                    failures[symbol] = (
                        f"Alpaca returned bars for {symbol}, which was not requested; dropped"
                    )
                    continue
                if items is None or items == []:
                    continue  # no bars: an empty list is not data (named below if none at all)
                if not isinstance(items, list):
                    failures[symbol] = (
                        f"Alpaca sent {type(items).__name__} for {symbol}'s bars, not a list: "
                        f"{str(items)[:100]!r}"
                    )
                    continue
                bars.setdefault(symbol, []).extend((item, clock) for item in items)
            token = page.get("next_page_token")
            if not token:
                break
            if token in seen:
                if len(chunk) > 1:  # ask again one symbol at a time: a smaller answer
                    raise _ChunkRejected(None, f"pagination loop on page token {token[:40]!r}")
                failures[chunk[0]] = (
                    f"Alpaca repeated page token {token[:40]!r} (a pagination loop); the "
                    "bars of this symbol may be incomplete and were dropped: rerun later"
                )
                bars.pop(chunk[0], None)
                break
            seen.add(token)
        return {s: b for s, b in bars.items() if s not in failures}, failures

    def _get_page(
        self,
        params: dict[str, Any],
        token: str | None,
        key: str = "bars",
        client: RESTClient | None = None,
        path: str = "/stocks/bars",
    ) -> dict[str, Any]:
        """One page of ``GET path``, errors sorted into transient and permanent."""
        self.bucket.acquire()
        try:
            page = (client or self._client).get(path, {**params, "page_token": token})
        except APIError as exc:
            status = exc.status_code
            if status == 429 or (status is not None and status >= 500):
                raise TransientSourceError(
                    f"Alpaca answered HTTP {status}: {_body(exc)}", _retry_after(exc.response)
                ) from exc
            if status in (401, 403):
                raise DataSourceError(
                    f"Alpaca refused the credentials (HTTP {status}: {_body(exc)}); check "
                    "ALPACA_API_KEY / ALPACA_SECRET_KEY, and that your plan includes "
                    f"ALPACA_DATA_FEED={self.feed.value} (the free plan has iex only)"
                ) from exc
            raise _ChunkRejected(status, _body(exc)) from exc
        except requests.Timeout as exc:
            raise TransientSourceError(f"Alpaca did not answer in time: {exc}") from exc
        except requests.ConnectionError as exc:  # refused, reset, body cut short
            raise TransientSourceError(f"could not reach Alpaca: {exc}") from exc
        except ValueError as exc:  # requests' JSONDecodeError: malformed or truncated body
            raise TransientSourceError(
                f"Alpaca returned malformed or truncated JSON: {exc}"
            ) from exc
        if page is None:
            raise TransientSourceError("Alpaca returned an empty response body")
        if not isinstance(page, dict) or key not in page:
            raise DataSourceError(
                f"Alpaca's answer has no {key!r} key (got {str(page)[:200]!r}); is "
                "ALPACA_DATA_URL pointing at the market-data API (https://data.alpaca.markets)?"
            )
        if page[key] is None:
            page[key] = {}
        if not isinstance(page[key], dict):
            raise DataSourceError(f"Alpaca's {key!r} is not an object: {str(page[key])[:200]!r}")
        return page

    def fetch_corporate_actions(
        self, start: date, end: date, symbols: list[str] | None
    ) -> pd.DataFrame:
        """Splits and cash dividends with ex-date in ``[start, end]`` (``ACTION_COLUMNS``).

        Through alpaca-py's ``CorporateActionsClient`` endpoint (``GET /v1/corporate-actions``),
        paged and retried like the bars. Forward and reverse splits become ``split`` rows
        (``new_rate / old_rate`` new shares per old: 0.1 for a 1-for-10 reverse split), cash
        dividends ``dividend`` rows (``rate``, USD per share). Other kinds (stock dividends,
        spin-offs, mergers, name changes) are not mapped: they are outside ``adjusted_prices``.
        """
        good, failures = split_symbols(self.universe() if symbols is None else symbols)
        if failures:
            raise PartialFetchError(self.name, FetchResult(empty_bars(), failures))
        rows: list[tuple[str, date, str, float, str]] = []
        for i in range(0, len(good), self.symbols_per_request):
            chunk = good[i : i + self.symbols_per_request]
            params = {
                "symbols": ",".join(chunk),
                "types": "forward_split,reverse_split,cash_dividend",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "limit": 1000,
            }
            token: str | None = None
            seen: set[str] = set()
            for _ in range(MAX_PAGES):
                fetch = partial(
                    self._get_page, params, token, "corporate_actions", self._actions_client,
                    "/corporate-actions",
                )  # fmt: skip
                try:
                    page = self.retry.call(fetch, f"Alpaca corporate actions {chunk[0]}…")
                except _ChunkRejected as exc:  # a permanent 4xx: one line, no traceback
                    raise DataSourceError(
                        f"Alpaca refused the corporate-actions request for {chunk[0]}…"
                        f"{chunk[-1]} (HTTP {exc.status}: {exc}); check ALPACA_DATA_URL and the "
                        "plan, or set CORPORATE_ACTIONS_ON_ERROR=warn to load bars without them"
                    ) from exc
                rows.extend(_action_rows(page["corporate_actions"], set(chunk)))
                token = page.get("next_page_token")
                if not token:
                    break
                if token in seen:
                    raise DataSourceError(
                        f"Alpaca repeated corporate-actions page token {token[:40]!r}; rerun later"
                    )
                seen.add(token)
        frame = pd.DataFrame(rows, columns=list(ACTION_COLUMNS))
        return frame.drop_duplicates(["symbol", "ex_date", "kind"], keep="last").reset_index(
            drop=True
        )


_FIELDS = {"t": "vendor_ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
           "vw": "vwap", "n": "trade_count"}  # fmt: skip


def bars_frame(raw: dict[str, list[tuple[Any, str | None]]], timeframe: TimeFrame) -> pd.DataFrame:
    """The canonical bar frame of raw Alpaca items, values as sent (see the module docstring).

    ``raw``: symbol -> [(item, Date header of its page)]. Numbers stay numbers, anything else
    (text, null, a missing key) stays what it was for the gate to name. ``ts``/``session_date``
    are derived only from a well-formed ``t`` (RFC 3339 with offset): daily, the NYSE close of
    ``t``'s New York date (NaT off-session); minute, ``t`` + the bar's length.
    """
    pairs = [(symbol, item, clock) for symbol in sorted(raw) for item, clock in raw[symbol]]
    if not pairs:
        return empty_bars().assign(**{c: pd.Series(dtype=object) for c in VENDOR_COLUMNS})
    items = [p[1] for p in pairs]
    frame = pd.DataFrame.from_records(
        [item if isinstance(item, dict) else {} for item in items], columns=list(_FIELDS)
    ).rename(columns=_FIELDS)
    for column in ("open", "high", "low", "close", "volume", "vwap", "trade_count"):
        if pd.api.types.is_integer_dtype(frame[column].dtype):
            frame[column] = frame[column].astype("float64")
    frame["symbol"] = [p[0] for p in pairs]
    frame["raw"] = items
    frame["vendor_clock"] = pd.to_datetime(
        pd.Series([p[2] for p in pairs], dtype=object), utc=True, errors="coerce",
        format="%a, %d %b %Y %H:%M:%S GMT",
    )  # fmt: skip
    started, _ = vendor_times(frame["vendor_ts"])
    days = started.dt.tz_convert(calendar.EXCHANGE_TZ).dt.date
    frame["session_date"] = days.astype(object).where(started.notna(), None)
    if timeframe.unit == TimeFrameUnit.Day:
        known = days[started.notna()]
        if known.empty:
            frame["ts"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        else:
            closes = calendar.schedule(min(known), max(known))["close"]
            frame["ts"] = pd.to_datetime(frame["session_date"].map(closes), utc=True)
    else:
        frame["ts"] = started + _duration(timeframe)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame[[*BAR_COLUMNS, *VENDOR_COLUMNS]]


def _duration(timeframe: TimeFrame) -> pd.Timedelta:
    unit = {TimeFrameUnit.Minute: "min", TimeFrameUnit.Hour: "h"}.get(timeframe.unit)
    if unit is None:
        raise DataSourceError(f"timeframe {timeframe} is not supported (minutes, hours or 1Day)")
    return pd.Timedelta(timeframe.amount, unit=unit)


def settings_from_connection(
    login: str | None, password: str | None, host: str | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    """Settings overrides from an Airflow connection (by convention ``alpaca_data``).

    ``login`` → ``ALPACA_API_KEY``, ``password`` → ``ALPACA_SECRET_KEY``, ``host`` (optional,
    e.g. ``https://data.alpaca.markets``) → ``ALPACA_DATA_URL``, ``extra["feed"]`` (optional)
    → ``ALPACA_DATA_FEED``. A DAG task applies them with
    ``settings.model_copy(update=settings_from_connection(c.login, c.password, c.host,
    c.extra_dejson))``; ``pipelines`` itself never imports Airflow.
    """
    if not login or not password:
        raise ConfigurationError(
            "the Alpaca connection needs the API key as login and the secret key as password"
        )
    out: dict[str, Any] = {
        "alpaca_api_key": SecretStr(login),
        "alpaca_secret_key": SecretStr(password),
    }
    if host:
        out["alpaca_data_url"] = host if "://" in host else f"https://{host}"
    feed = (extra or {}).get("feed")
    if feed is not None:
        if feed not in ("iex", "sip"):
            raise ConfigurationError(f"the Alpaca connection's extra feed={feed!r}: use iex or sip")
        out["alpaca_data_feed"] = feed
    return out
