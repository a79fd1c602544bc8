"""News collectors behind one Protocol (:class:`pipelines.news.NewsSource`).

``NEWS_SOURCES`` picks them (``fixtures`` offline; ``alpaca``, ``newsapi``, ``reddit`` with
credentials). A source without credentials is skipped with one log line, unless it is listed
in ``NEWS_REQUIRED_SOURCES``: then the run fails naming the missing setting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pipelines.config import Settings
from pipelines.errors import ConfigurationError
from pipelines.news import NewsSource

log = logging.getLogger(__name__)
NAMES = ("fixtures", "alpaca", "newsapi", "reddit")


def _missing(settings: Settings, name: str) -> str | None:
    """The credential setting ``name`` lacks, or None when it has what it needs."""
    needs: tuple = {
        "alpaca": (
            "ALPACA_API_KEY",
            settings.alpaca_api_key,
            "ALPACA_SECRET_KEY",
            settings.alpaca_secret_key,
        ),
        "newsapi": ("NEWSAPI_API_KEY", settings.newsapi_api_key),
        "reddit": (
            "REDDIT_CLIENT_ID",
            settings.reddit_client_id,
            "REDDIT_CLIENT_SECRET",
            settings.reddit_client_secret,
        ),
    }.get(name, ())
    for var, value in zip(needs[::2], needs[1::2], strict=True):
        if not value.get_secret_value():
            return str(var)
    return None


def get_news_source(settings: Settings, name: str) -> NewsSource | None:
    """The collector ``name``, or None (logged) when its credentials are not set."""
    if name not in NAMES:
        raise ConfigurationError(
            f"unknown news source {name!r}: NEWS_SOURCES takes {', '.join(NAMES)}"
        )
    missing = _missing(settings, name)
    if missing:
        if name in settings.news_required_sources:
            raise ConfigurationError(
                f"news source {name} is required (NEWS_REQUIRED_SOURCES) but {missing} is not "
                "set: set it in the environment or the Airflow connection, or drop the source"
            )
        log.warning("news source skipped source=%s reason=%s is not set", name, missing)
        return None
    if name == "fixtures":
        from pipelines.news.sources.fixtures import FixtureSource

        return FixtureSource()
    if name == "alpaca":
        from pipelines.news.sources.alpaca import AlpacaNewsSource

        return AlpacaNewsSource.from_settings(settings)
    if name == "newsapi":
        from pipelines.news.sources.newsapi import NewsApiSource

        return NewsApiSource.from_settings(settings)
    from pipelines.news.sources.reddit import RedditSource

    return RedditSource.from_settings(settings)


def settings_from_connection(name: str, conn: Mapping | None) -> dict:
    """Settings overrides from an Airflow connection's fields (``login``, ``password``,
    ``host``): the source's key/id, secret and base URL."""
    if not conn:
        return {}
    from pydantic import SecretStr

    login, password, host = conn.get("login"), conn.get("password"), conn.get("host")
    fields = {
        "alpaca": ("alpaca_api_key", "alpaca_secret_key", "alpaca_data_url"),
        "newsapi": (None, "newsapi_api_key", "newsapi_url"),
        "reddit": ("reddit_client_id", "reddit_client_secret", "reddit_oauth_url"),
    }[name]
    out: dict = {}
    if fields[0] and login:
        out[fields[0]] = SecretStr(login)
    if password:
        out[fields[1]] = SecretStr(password)
    if host:
        out[fields[2]] = host
    return out
