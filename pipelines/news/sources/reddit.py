"""Reddit submissions and comments through PRAW (read-only, application-only OAuth).

Credentials: a Reddit "script" or "web" app's ``REDDIT_CLIENT_ID`` / ``REDDIT_CLIENT_SECRET``
and a descriptive ``REDDIT_USER_AGENT``. For each of ``REDDIT_SUBREDDITS``: ``/r/S/new``
(submissions) and ``/r/S/comments`` (comments), newest first, read until an item older than
the window's start (at most ``REDDIT_MAX_ITEMS``, Reddit's own listing cap is about 1,000).
Reddit's ``x-ratelimit-remaining/used/reset`` headers are honoured by prawcore's rate limiter
(it sleeps before the next request); a 429 is retried by our policy. ``REDDIT_URL`` and
``REDDIT_OAUTH_URL`` are PRAW's ``reddit_url``/``oauth_url`` settings (a proxy or a test
server). ``created_utc`` is seconds since the epoch, UTC by definition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import praw
import prawcore

from pipelines.config import Settings
from pipelines.errors import DataSourceError
from pipelines.news import Collected, RawItem
from pipelines.sources.retry import RetryPolicy, TransientSourceError


class RedditSource:
    """Posts and comments of finance subreddits; symbols come from cashtags and names."""

    name = "reddit"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        user_agent: str,
        subreddits: list[str],
        oauth_url: str | None = None,
        reddit_url: str | None = None,
        max_items: int = 1000,
        retry: RetryPolicy | None = None,
    ) -> None:
        urls: dict[str, Any] = {
            k: v for k, v in (("oauth_url", oauth_url), ("reddit_url", reddit_url)) if v
        }
        self._reddit = praw.Reddit(
            client_id=client_id,
            client_secret=client_secret,
            user_agent=user_agent,
            check_for_updates=False,
            check_for_async=False,
            timeout=30,
            **urls,
        )
        self._reddit.read_only = True
        self.subreddits = subreddits
        self.max_items = max_items
        self.retry = retry or RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedditSource:
        return cls(
            settings.reddit_client_id.get_secret_value(),
            settings.reddit_client_secret.get_secret_value(),
            settings.reddit_user_agent,
            settings.reddit_subreddits,
            settings.reddit_oauth_url or None,
            settings.reddit_url or None,
            settings.reddit_max_items,
            RetryPolicy.from_settings(settings),
        )

    def collect(self, start: datetime, end: datetime, symbols: list[str]) -> Collected:
        out = Collected()
        for name in self.subreddits:
            sub = self._reddit.subreddit(name)
            for kind, listing in (("submission", sub.new), ("comment", sub.comments)):
                items = self.retry.call(
                    partial(self._listing, listing, kind, start), f"Reddit r/{name} {kind}s"
                )
                out.items += items
                out.requests += 1
        return out

    def _listing(self, listing: Any, kind: str, start: datetime) -> list[RawItem]:
        floor = start.timestamp()
        items: list[RawItem] = []
        try:
            for thing in listing(limit=self.max_items):
                created = getattr(thing, "created_utc", None)
                if isinstance(created, int | float) and created < floor:
                    break  # newest first: the rest is older than the window
                items.append(_item(thing, kind))
        except prawcore.TooManyRequests as exc:
            raise TransientSourceError(
                "Reddit answered 429 Too Many Requests", _retry_after(exc.response)
            ) from exc
        except prawcore.ServerError as exc:
            raise TransientSourceError(f"Reddit server error: {exc}") from exc
        except (prawcore.OAuthException, prawcore.ResponseException) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if isinstance(exc, prawcore.OAuthException) or status in (401, 403):
                raise DataSourceError(
                    f"Reddit refused the app credentials ({type(exc).__name__}); check "
                    "REDDIT_CLIENT_ID / REDDIT_CLIENT_SECRET (or the reddit connection)"
                ) from exc
            raise DataSourceError(f"Reddit refused the request (HTTP {status})") from exc
        except prawcore.RequestException as exc:
            raise TransientSourceError(f"could not reach Reddit: {exc}") from exc
        except ValueError as exc:  # truncated JSON, or an HTML page
            raise TransientSourceError(f"Reddit returned malformed JSON: {exc}") from exc
        return items


def _retry_after(response: Any) -> float | None:
    value = getattr(response, "headers", {}).get("Retry-After", "")
    return float(value) if str(value).isdigit() else None


def _item(thing: Any, kind: str) -> RawItem:
    created = getattr(thing, "created_utc", None)
    published: datetime | str | None = (
        datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else None
    )
    if kind == "submission":
        headline, body = str(getattr(thing, "title", "") or ""), str(thing.selftext or "")
    else:
        headline, body = "", str(getattr(thing, "body", "") or "")
    author = getattr(thing, "author", None)
    return RawItem(
        source="reddit",
        item_id=str(thing.fullname),
        kind=kind,
        published=published,
        headline=headline,
        body=body,
        url="https://www.reddit.com" + str(getattr(thing, "permalink", "") or ""),
        author=str(author) if author is not None else None,
    )
