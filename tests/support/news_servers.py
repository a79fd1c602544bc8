"""A local HTTP server speaking three vendors' news protocols, for their real client libraries.

- **Alpaca News** (alpaca-py ``NewsClient(url_override=…)``): ``GET /v1beta1/news`` with
  ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers (403 ``{"message": "forbidden."}``
  otherwise), ``symbols``, ``start``/``end`` (RFC 3339, inclusive), ``limit`` (≤ 50),
  ``sort``, ``page_token``; answers ``{"news": [...], "next_page_token": …}``.
- **NewsAPI** (newsapi-python through a session adapter): ``GET /v2/everything`` and
  ``/v2/top-headlines`` with the key in ``Authorization`` (or ``X-Api-Key``/``apiKey``);
  ``q`` (quoted terms joined by OR), ``from``/``to``, ``page``, ``pageSize``; answers
  ``{"status": "ok", "totalResults": n, "articles": [...]}`` or NewsAPI's error body
  ``{"status": "error", "code": …, "message": …}`` (401 ``apiKeyInvalid``, 429
  ``rateLimited``, 426 ``maximumResultsReached`` past ``max_results``).
- **Reddit** (PRAW with ``oauth_url``/``reddit_url``): ``POST /api/v1/access_token``
  (HTTP basic client id/secret, ``grant_type=client_credentials``) and ``GET /r/S/new``,
  ``/r/S/comments`` (bearer token; ``limit``, ``after``) answering Listings of ``t3``/``t1``
  things newest first, with ``x-ratelimit-remaining/used/reset`` headers.

Items live in :attr:`alpaca`, :attr:`newsapi` and :attr:`reddit` (dicts in each vendor's
JSON shape). Faults queue per vendor (``faults["alpaca"|"newsapi"|"reddit"|"token"]``) and
are consumed one per request. Every request is logged in :attr:`requests` with its time.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY, SECRET = "test-news-key", "test-news-secret"
NEWSAPI_KEY = "test-newsapi-key"
REDDIT_ID, REDDIT_SECRET, TOKEN = "test-reddit-id", "test-reddit-secret", "test-reddit-token"


@dataclass
class Fault:
    """One request's misbehaviour."""

    status: int | None = None
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    truncate: bool = False  # the normal answer cut in half


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class NewsServers:
    """Starts on 127.0.0.1, a free port; ``url`` is its base; ``close()`` stops it."""

    def __init__(self) -> None:
        self.alpaca: list[dict[str, Any]] = []
        self.newsapi: list[dict[str, Any]] = []
        self.reddit: dict[str, dict[str, list[dict[str, Any]]]] = {}  # sub -> kind -> things
        self.faults: dict[str, list[Fault]] = {
            "alpaca": [],
            "newsapi": [],
            "reddit": [],
            "token": [],
        }
        self.requests: list[tuple[float, str, str]] = []  # (monotonic s, method, path?query)
        self.max_results = 10_000
        self.ratelimit: dict[str, str] | None = None  # Reddit headers for every listing
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, "GET")

            def do_POST(self) -> None:
                outer._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- plumbing -----------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        self.requests.append((time.monotonic(), method, h.path))
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if method == "POST":
            length = int(h.headers.get("Content-Length", 0) or 0)
            query.update({k: v[-1] for k, v in parse_qs(h.rfile.read(length).decode()).items()})
        path = parts.path
        if path.startswith("/v1beta1/news"):
            vendor, answer = "alpaca", self._alpaca
        elif path.startswith("/v2/"):
            vendor, answer = "newsapi", self._newsapi
        elif path == "/api/v1/access_token":
            vendor, answer = "token", self._token
        elif path.startswith("/r/"):
            vendor, answer = "reddit", self._reddit
        else:
            return self._send(h, 404, {"message": "not found"})
        fault = self.faults[vendor].pop(0) if self.faults[vendor] else None
        if fault is not None and fault.status is not None:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return self._send_raw(h, fault.status, body, fault.content_type, fault.headers)
        status, payload, headers = answer(h, path, query)
        body = json.dumps(payload).encode()
        if fault is not None and fault.truncate:
            body = body[: len(body) // 2]
        self._send_raw(
            h, status, body, "application/json", {**headers, **(fault.headers if fault else {})}
        )

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        self._send_raw(h, status, json.dumps(payload).encode(), "application/json", {})

    @staticmethod
    def _send_raw(
        h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, headers: dict[str, str]
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    # -- Alpaca -------------------------------------------------------------------------
    def _alpaca(self, h: BaseHTTPRequestHandler, path: str, q: dict) -> tuple[int, Any, dict]:
        if (
            h.headers.get("APCA-API-KEY-ID") != KEY
            or h.headers.get("APCA-API-SECRET-KEY") != SECRET
        ):
            return 403, {"message": "forbidden."}, {}
        wanted = set(filter(None, q.get("symbols", "").split(",")))
        start, end = _ts(q["start"]), _ts(q["end"])
        limit = min(int(q.get("limit") or 10), 50)
        rows = [
            a
            for a in self.alpaca
            if (not wanted or wanted & {str(x).upper() for x in a.get("symbols") or []})
            and (
                a.get("created_at") is None
                or not isinstance(a["created_at"], str)
                or not re.match(r"\d{4}-\d\d-\d\dT", a["created_at"])
                or _ts(a["created_at"]).tzinfo is None
                or start <= _ts(a["created_at"]) <= end
            )
        ]
        offset = int(q.get("page_token") or 0)
        page = rows[offset : offset + limit]
        token = str(offset + limit) if offset + limit < len(rows) else None
        return 200, {"news": page, "next_page_token": token}, {}

    # -- NewsAPI ------------------------------------------------------------------------
    def _newsapi(self, h: BaseHTTPRequestHandler, path: str, q: dict) -> tuple[int, Any, dict]:
        key = h.headers.get("Authorization") or h.headers.get("X-Api-Key") or q.get("apiKey")
        if key != NEWSAPI_KEY:
            return (
                401,
                {
                    "status": "error",
                    "code": "apiKeyInvalid",
                    "message": "Your API key is invalid or incorrect.",
                },
                {},
            )
        page, size = int(q.get("page") or 1), int(q.get("pageSize") or 20)
        if page * size > self.max_results and (page - 1) * size >= self.max_results:
            return (
                426,
                {
                    "status": "error",
                    "code": "maximumResultsReached",
                    "message": f"You have requested too many results. Developer accounts "
                    f"are limited to a max of {self.max_results} results.",
                },
                {},
            )
        rows = list(self.newsapi)
        if path == "/v2/everything":
            terms = [t.strip('"').lower() for t in q.get("q", "").split(" OR ")]
            lo, hi = q.get("from"), q.get("to")

            def hit(a: dict) -> bool:
                text = f"{a.get('title')} {a.get('description')} {a.get('content')}".lower()
                when = a.get("publishedAt")
                in_time = True
                if isinstance(when, str) and re.match(
                    r"\d{4}-\d\d-\d\dT.*(Z|[+-]\d\d:\d\d)$", when
                ):
                    t = _ts(when).replace(tzinfo=None)
                    in_time = (not lo or t >= datetime.fromisoformat(lo)) and (
                        not hi or t <= datetime.fromisoformat(hi)
                    )
                return in_time and any(term in text for term in terms)

            rows = [a for a in rows if hit(a)]
        total = len(rows)
        return (
            200,
            {
                "status": "ok",
                "totalResults": total,
                "articles": rows[(page - 1) * size : page * size],
            },
            {},
        )

    # -- Reddit -------------------------------------------------------------------------
    def _token(self, h: BaseHTTPRequestHandler, path: str, q: dict) -> tuple[int, Any, dict]:
        auth = h.headers.get("Authorization", "")
        good = "Basic " + base64.b64encode(f"{REDDIT_ID}:{REDDIT_SECRET}".encode()).decode()
        if auth != good or q.get("grant_type") != "client_credentials":
            return 401, {"message": "Unauthorized", "error": 401}, {}
        return (
            200,
            {"access_token": TOKEN, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
            {},
        )

    def _reddit(self, h: BaseHTTPRequestHandler, path: str, q: dict) -> tuple[int, Any, dict]:
        if h.headers.get("Authorization") != f"bearer {TOKEN}":
            return 401, {"message": "Unauthorized", "error": 401}, {}
        m = re.match(r"^/r/([^/]+)/(new|comments)/?$", path)
        if not m:
            return 404, {"message": "Not Found", "error": 404}, {}
        kind = "t3" if m.group(2) == "new" else "t1"
        things = sorted(
            self.reddit.get(m.group(1), {}).get(kind, []),
            key=lambda t: -float(t.get("created_utc") or 0),
        )
        limit = min(int(q.get("limit") or 25), 100)
        after = q.get("after")
        names = [f"{kind}_{t['id']}" for t in things]
        start = names.index(after) + 1 if after in names else 0
        page = things[start : start + limit]
        next_after = f"{kind}_{page[-1]['id']}" if page and start + limit < len(things) else None
        listing = {
            "kind": "Listing",
            "data": {
                "after": next_after,
                "before": None,
                "dist": len(page),
                "children": [{"kind": kind, "data": t} for t in page],
            },
        }
        return 200, listing, dict(self.ratelimit or {})


def alpaca_article(
    i: int, created_at: str | None, symbols: list[str], headline: str, **extra: Any
) -> dict[str, Any]:
    """An article in Alpaca's JSON shape."""
    return {
        "id": i,
        "headline": headline,
        "author": "Benzinga Newsdesk",
        "created_at": created_at,
        "updated_at": created_at,
        "summary": "",
        "content": "<p>Body of the story.</p>",
        "url": f"https://www.benzinga.com/news/{i}",
        "images": [],
        "symbols": symbols,
        "source": "benzinga",
        **extra,
    }


def newsapi_article(url: str, published: str | None, title: str, **extra: Any) -> dict:
    """An article in NewsAPI's JSON shape."""
    return {
        "source": {"id": None, "name": "Example Wire"},
        "author": "Reporter",
        "title": title,
        "description": "",
        "url": url,
        "urlToImage": None,
        "publishedAt": published,
        "content": "Full text [+100 chars]",
        **extra,
    }


def reddit_thing(
    kind: str, i: str, created_utc: float | None, text: str, sub: str = "stocks", title: str = ""
) -> dict:
    """A submission (``t3``) or comment (``t1``) in Reddit's JSON shape."""
    data: dict[str, Any] = {
        "id": i,
        "name": f"{kind}_{i}",
        "created_utc": created_utc,
        "author": "someone",
        "subreddit": sub,
        "permalink": f"/r/{sub}/comments/{i}/",
    }
    if kind == "t3":
        data.update(title=title, selftext=text, is_self=True, url=f"https://reddit.com/{i}")
    else:
        data.update(body=text, link_id="t3_parent", parent_id="t3_parent")
    return data
