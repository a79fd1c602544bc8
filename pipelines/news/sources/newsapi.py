"""NewsAPI (newsapi.org) through ``newsapi-python``'s ``NewsApiClient``.

``/v2/everything`` for the window (``from``/``to`` in UTC, ``sortBy=publishedAt``,
``language=en``, 100 a page, at most ``NEWSAPI_MAX_PAGES`` pages per query) with ``q`` built
from the universe's company names and tickers (quoted, joined by OR, at most 500 characters
a query); ``/v2/top-headlines`` (``category=business``, ``country=us``) for today's headlines.
NewsAPI tags no symbols: the matcher resolves cashtags and company names.

The library has fixed https://newsapi.org URLs but takes a ``requests.Session``: a
``NEWSAPI_URL`` (a proxy, or the test server) is honoured by mounting an adapter on that
session that sends newsapi.org requests to it. Errors, by NewsAPI's ``code``:
``rateLimited`` and 5xx are retried (``Retry-After`` honoured); ``apiKeyInvalid``,
``apiKeyDisabled``, ``apiKeyExhausted``, ``apiKeyMissing`` fail the run with one line;
``maximumResultsReached`` (the plan's result cap) ends that query's paging, keeping what came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from newsapi import NewsApiClient
from newsapi.newsapi_exception import NewsAPIException
from requests.adapters import HTTPAdapter

from pipelines.config import Settings
from pipelines.errors import DataSourceError
from pipelines.news import Collected, RawItem
from pipelines.news.matcher import core_name, sample_company_names
from pipelines.sources.retry import RetryPolicy, TransientSourceError

log = logging.getLogger(__name__)
PAGE_SIZE = 100
MAX_QUERY_CHARS = 500
_AUTH_CODES = {"apiKeyInvalid", "apiKeyDisabled", "apiKeyExhausted", "apiKeyMissing"}


class _BaseURLAdapter(HTTPAdapter):
    """Sends each request to ``base`` (scheme and host), keeping path and query."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


class _Cap(Exception):
    """NewsAPI's ``maximumResultsReached``: stop paging this query."""


def queries(symbols: list[str], names: dict[str, str]) -> list[str]:
    """``q`` strings of at most :data:`MAX_QUERY_CHARS`: each symbol's company name (legal
    suffixes removed) or, without a name, its cashtag, quoted and joined by OR."""
    terms = [f'"{core_name(names[s])}"' if s in names else f'"${s}"' for s in symbols]
    out: list[str] = []
    current = ""
    for term in terms:
        candidate = f"{current} OR {term}" if current else term
        if len(candidate) > MAX_QUERY_CHARS and current:
            out.append(current)
            candidate = term
        current = candidate
    return [*out, current] if current else out


class NewsApiSource:
    """Articles from NewsAPI's ``everything`` (window) and ``top-headlines`` endpoints."""

    name = "newsapi"

    def __init__(
        self,
        api_key: str,
        url: str | None = None,
        max_pages: int = 5,
        retry: RetryPolicy | None = None,
        names: dict[str, str] | None = None,
        top_headlines: bool = False,
    ) -> None:
        session = requests.Session()
        # The library raises with the JSON body only; the hook keeps a 429's Retry-After.
        self._retry_after: float | None = None
        session.hooks["response"].append(self._remember_retry_after)
        if url:
            session.mount("https://newsapi.org/", _BaseURLAdapter(url))
        self._client = NewsApiClient(api_key=api_key, session=session)
        self.max_pages = max_pages
        self.retry = retry or RetryPolicy()
        self.names = sample_company_names() if names is None else names
        self.top_headlines = top_headlines

    def _remember_retry_after(self, response: requests.Response, *args: Any, **kw: Any) -> None:
        value = response.headers.get("Retry-After", "")
        self._retry_after = float(value) if value.isdigit() else None

    @classmethod
    def from_settings(cls, settings: Settings) -> NewsApiSource:
        return cls(
            settings.newsapi_api_key.get_secret_value(),
            settings.newsapi_url or None,
            settings.newsapi_max_pages,
            RetryPolicy.from_settings(settings),
        )

    def collect(self, start: datetime, end: datetime, symbols: list[str]) -> Collected:
        out = Collected()
        window: dict[str, Any] = {
            "from_param": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "to": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "language": "en",
            "sort_by": "publishedAt",
            "page_size": PAGE_SIZE,
        }
        for q in queries(symbols, self.names):
            self._pages(out, partial(self._everything, q, window))
        if self.top_headlines:
            self._pages(out, self._headlines)
        return out

    def _everything(self, q: str, window: dict[str, Any], page: int) -> dict:
        return self._client.get_everything(q=q, page=page, **window)

    def _headlines(self, page: int) -> dict:
        return self._client.get_top_headlines(
            category="business", country="us", page_size=PAGE_SIZE, page=page
        )

    def _pages(self, out: Collected, fetch: Callable[[int], dict]) -> None:
        for page in range(1, self.max_pages + 1):
            try:
                body = self.retry.call(partial(self._call, fetch, page), "NewsAPI page")
            except _Cap:
                log.warning("newsapi result cap reached page=%s kept=%s", page, len(out.items))
                return
            out.requests += 1
            articles = [a for a in body.get("articles") or [] if isinstance(a, dict)]
            out.items += [_item(a) for a in articles]
            if len(articles) < PAGE_SIZE or page * PAGE_SIZE >= int(body.get("totalResults", 0)):
                return

    def _call(self, fetch: Callable[[int], dict], page: int) -> dict:
        try:
            body = fetch(page)
        except NewsAPIException as exc:
            err = exc.get_exception() if isinstance(exc.get_exception(), dict) else {}
            code, message = err.get("code", "?"), str(err.get("message", ""))[:200]
            if code == "maximumResultsReached":
                raise _Cap from exc
            if code in _AUTH_CODES:
                raise DataSourceError(
                    f"NewsAPI refused the key ({code}); check NEWSAPI_API_KEY (or the newsapi "
                    "connection's password)"
                ) from exc
            if code in ("rateLimited", "unexpectedError"):
                raise TransientSourceError(f"NewsAPI {code}: {message}", self._retry_after) from exc
            raise DataSourceError(f"NewsAPI refused the request ({code}: {message})") from exc
        except requests.Timeout as exc:
            raise TransientSourceError(f"NewsAPI did not answer in time: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientSourceError(f"could not reach NewsAPI: {exc}") from exc
        except ValueError as exc:  # truncated JSON, or an HTML error page
            raise TransientSourceError(f"NewsAPI returned malformed JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise TransientSourceError(f"NewsAPI returned no articles list: {str(body)[:120]!r}")
        return body


def _item(raw: dict[str, Any]) -> RawItem:
    source: dict = raw["source"] if isinstance(raw.get("source"), dict) else {}
    url = raw.get("url")
    return RawItem(
        source="newsapi",
        item_id=str(url or f"{source.get('name')}|{raw.get('title')}|{raw.get('publishedAt')}"),
        kind="article",
        published=raw.get("publishedAt"),
        headline=str(raw.get("title") or ""),
        summary=str(raw.get("description") or ""),
        body=str(raw.get("content") or ""),
        url=url,
        author=raw.get("author"),
    )
