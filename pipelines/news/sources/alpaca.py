"""Alpaca News (historical) through alpaca-py's ``NewsClient``.

``GET /v1beta1/news`` with ``symbols`` (the universe, in chunks), ``start``/``end`` (RFC 3339,
inclusive: the half-open window is applied on our side), ``limit`` 50, ``sort=asc`` and
``include_content``; pages follow ``next_page_token``. As the bars source does, pages are
requested one by one through the client's own ``get`` (its auth headers and error types), with
alpaca-py's retries off and :class:`~pipelines.sources.retry.RetryPolicy` the only retry layer,
so a repeated page token is reported instead of looped on. The raw JSON is kept
(``raw_data``): alpaca-py's ``News`` model rejects a whole page for one item without a time,
and the quarantine must see that item, not lose its neighbours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.news import NewsClient

from pipelines.config import Settings
from pipelines.errors import DataSourceError
from pipelines.news import Collected, RawItem
from pipelines.sources.retry import RetryPolicy, TransientSourceError

PAGE_SIZE = 50
SYMBOLS_PER_REQUEST = 50
_TIMEOUT_S = 30.0


class _TimeoutSession(requests.Session):
    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", _TIMEOUT_S)
        return super().request(*args, **kwargs)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AlpacaNewsSource:
    """Articles from Alpaca's news API (Benzinga), tagged with symbols by the vendor."""

    name = "alpaca"

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = NewsClient(api_key=api_key, secret_key=secret_key, url_override=url)
        # alpaca-py 0.44 keeps these as attributes (no constructor parameter): see
        # pipelines/sources/alpaca.py, which bounds the bars client the same way.
        self._client._retry = 0
        self._client._session = _TimeoutSession()
        self.retry = retry or RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> AlpacaNewsSource:
        return cls(
            settings.alpaca_api_key.get_secret_value(),
            settings.alpaca_secret_key.get_secret_value(),
            settings.alpaca_data_url or None,
            RetryPolicy.from_settings(settings),
        )

    def collect(self, start: datetime, end: datetime, symbols: list[str]) -> Collected:
        out = Collected()
        for i in range(0, len(symbols), SYMBOLS_PER_REQUEST):
            chunk = symbols[i : i + SYMBOLS_PER_REQUEST]
            params = {
                "symbols": ",".join(chunk),
                "start": _rfc3339(start),
                "end": _rfc3339(end),
                "limit": PAGE_SIZE,
                "sort": "asc",
                "include_content": "true",
            }
            token: str | None = None
            seen: set[str] = set()
            while True:
                page = self.retry.call(partial(self._page, params, token), "Alpaca news page")
                out.requests += 1
                out.items += [raw_item(raw) for raw in page["news"] if isinstance(raw, dict)]
                token = page.get("next_page_token")
                if not token:
                    break
                if token in seen:
                    raise DataSourceError(
                        f"Alpaca news repeated page token {token!r}: the vendor is looping; "
                        f"{len(out.items)} items so far were not stored, rerun later"
                    )
                seen.add(token)
        return out

    def _page(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        try:
            page = self._client.get("/news", {**params, "page_token": token})
        except APIError as exc:
            status = exc.status_code
            text = str(exc)[:200]
            if status == 429 or (status is not None and status >= 500):
                raise TransientSourceError(
                    f"Alpaca news answered HTTP {status}: {text}", _retry_after(exc.response)
                ) from exc
            if status in (401, 403):
                raise DataSourceError(
                    f"Alpaca news refused the credentials (HTTP {status}); check "
                    "ALPACA_API_KEY / ALPACA_SECRET_KEY (or the alpaca_data connection)"
                ) from exc
            raise DataSourceError(
                f"Alpaca news refused the request (HTTP {status}: {text})"
            ) from exc
        except requests.Timeout as exc:
            raise TransientSourceError(f"Alpaca news did not answer in time: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientSourceError(f"could not reach Alpaca news: {exc}") from exc
        except ValueError as exc:  # truncated JSON, or an HTML page where JSON was due
            raise TransientSourceError(f"Alpaca news returned malformed JSON: {exc}") from exc
        if not isinstance(page, dict) or not isinstance(page.get("news"), list):
            raise TransientSourceError(
                f"Alpaca news returned no 'news' list (got {str(page)[:120]!r})"
            )
        return page


def _retry_after(response: requests.Response | None) -> float | None:
    from pipelines.sources.alpaca import _retry_after as hint

    return hint(response)


def raw_item(raw: dict[str, Any]) -> RawItem:
    """One Alpaca article (REST or stream payload, same fields) as a :class:`RawItem`."""
    symbols = raw.get("symbols") or []
    return RawItem(
        source="alpaca",
        item_id=str(raw.get("id", "")),
        kind="article",
        published=raw.get("created_at"),
        updated=raw.get("updated_at"),
        headline=str(raw.get("headline") or ""),
        summary=str(raw.get("summary") or ""),
        body=str(raw.get("content") or ""),
        url=raw.get("url"),
        author=raw.get("author"),
        vendor_symbols=tuple(str(s) for s in symbols if isinstance(s, str)),
    )
