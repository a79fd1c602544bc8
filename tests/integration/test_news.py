"""The news stage on a real warehouse: idempotent storage, cross-source dedupe, conflicts,
failing and unconfigured sources, and the sentiment features it writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipelines.errors import DataSourceError, MltradeError
from pipelines.features import sentiment
from pipelines.features.store import load_feature_set
from pipelines.ingest_news import run_news
from pipelines.news import store
from tests.support import news_servers as ns
from tests.support.news_servers import NewsServers

UNIVERSE = "AAPL,MSFT,IBM"
SESSION = date(2024, 3, 12)  # a Tuesday; the window is Monday's cutoff to Tuesday's
START, END = sentiment.cutoff(date(2024, 3, 11)), sentiment.cutoff(SESSION)


@pytest.fixture
def server() -> Iterator[NewsServers]:
    s = NewsServers()
    yield s
    s.close()


@pytest.fixture
def news_env(monkeypatch, server: NewsServers, warehouse, settings):
    from pipelines.config import get_settings

    for k, v in {
        "UNIVERSE": UNIVERSE,
        "ALPACA_API_KEY": ns.KEY,
        "ALPACA_SECRET_KEY": ns.SECRET,
        "ALPACA_DATA_URL": server.url,
        "NEWSAPI_API_KEY": ns.NEWSAPI_KEY,
        "NEWSAPI_URL": server.url,
        "SOURCE_RETRY_ATTEMPTS": "2",
        "SOURCE_RETRY_INITIAL_WAIT_S": "0",
        "SOURCE_RETRY_MAX_WAIT_S": "0",
        "REDDIT_CLIENT_ID": "",
        "REDDIT_CLIENT_SECRET": "",
    }.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    return get_settings()


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_fixture_news_is_stored_scored_and_idempotent(warehouse, news_env) -> None:
    summary = run_news(warehouse, news_env, ["fixtures"], START, END, "t1")
    stored = summary["sources"][0]["stored"]
    assert stored > 0 and summary["scored"] == {"vader": stored, "lm": stored}
    assert summary["sessions"] == [SESSION.isoformat()] and summary["feature_rows"] > 0
    with warehouse.connect() as conn:
        first = store.fingerprint(conn, START, END)
    again = run_news(warehouse, news_env, ["fixtures"], START, END, "t2")
    assert again["sources"][0]["stored"] == 0 and again["sources"][0]["unchanged"] == stored
    assert again["scored"] == {"vader": 0, "lm": 0}
    with warehouse.connect() as conn:
        assert store.fingerprint(conn, START, END) == first
    assert count(warehouse, "SELECT count(*) FROM news_items") == stored
    features = load_feature_set(
        warehouse, sentiment.SENTIMENT_SET, sentiment.NAMES, SESSION, SESSION
    )
    assert set(features.index.get_level_values("symbol")) <= {"AAPL", "MSFT", "IBM"}
    assert features["news_count"].sum() == stored  # every stored story of the window counted


def test_cross_source_duplicates_and_conflicts(warehouse, news_env, server) -> None:
    headline = "Apple beats estimates as iPhone sales rise"
    server.alpaca = [
        ns.alpaca_article(1, at(10), ["AAPL"], headline),
        ns.alpaca_article(2, at(20), ["MSFT"], "Microsoft misses estimates badly"),
    ]
    server.newsapi = [ns.newsapi_article("https://wire.test/a", at(30), headline + "!")]
    summary = run_news(warehouse, news_env, ["alpaca", "newsapi"], START, END, "t1")
    assert [s["stored"] for s in summary["sources"]] == [2, 1]  # provenance kept per source
    features = load_feature_set(
        warehouse, sentiment.SENTIMENT_SET, sentiment.NAMES, SESSION, SESSION
    )
    assert features.loc[(SESSION, "AAPL"), "news_count"] == 1  # one story, counted once
    assert features.loc[(SESSION, "MSFT"), "sent_lm_mean"] < 0

    # The vendor re-sends article 2 with other content: same updated_at is a conflict...
    server.alpaca[1] = {**server.alpaca[1], "headline": "Microsoft beats estimates"}
    again = run_news(warehouse, news_env, ["alpaca"], START, END, "t2")
    assert again["sources"][0]["reasons"] == {"news_conflicting_dup": 1}
    assert (
        count(
            warehouse,
            "SELECT count(*) FROM quarantine WHERE source = 'news:alpaca' "
            "AND expectation = 'news_conflicting_dup'",
        )
        == 1
    )
    with warehouse.connect() as conn:
        kept = conn.execute(sa.text("SELECT headline FROM news_items WHERE item_id = '2'"))
        assert kept.scalar_one() == "Microsoft misses estimates badly"
    # ...a newer updated_at is the vendor's correction: stored, rescored.
    server.alpaca[1] = {**server.alpaca[1], "updated_at": at(90)}
    third = run_news(warehouse, news_env, ["alpaca"], START, END, "t3")
    assert third["sources"][0]["updated"] == 1 and third["scored"]["lm"] == 1
    features = load_feature_set(
        warehouse, sentiment.SENTIMENT_SET, sentiment.NAMES, SESSION, SESSION
    )
    assert features.loc[(SESSION, "MSFT"), "sent_lm_mean"] > 0


def test_a_failing_source_loses_nothing_the_others_brought(
    warehouse, news_env, server, monkeypatch
) -> None:
    from pipelines.config import get_settings

    server.alpaca = [ns.alpaca_article(1, at(10), ["AAPL"], "Apple opens a store")]
    monkeypatch.setenv("NEWSAPI_API_KEY", "revoked-key")
    get_settings.cache_clear()
    with pytest.raises(DataSourceError) as err:
        run_news(warehouse, get_settings(), ["alpaca", "newsapi", "reddit"], START, END, "t1")
    message = str(err.value)
    assert "newsapi: NewsAPI refused the key (apiKeyInvalid)" in message
    assert "revoked-key" not in message and "\n" not in message
    assert count(warehouse, "SELECT count(*) FROM news_items WHERE source = 'alpaca'") == 1
    with warehouse.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status, summary FROM pipeline_runs WHERE stage = 'news'")
        ).one()
    assert status[0] == "failed"
    sources = {s["source"]: s["status"] for s in status[1]["sources"]}
    assert sources == {"alpaca": "ok", "newsapi": "failed", "reddit": "skipped"}


def test_a_required_source_without_credentials_fails(warehouse, news_env, monkeypatch) -> None:
    from pipelines.config import get_settings

    monkeypatch.setenv("NEWS_REQUIRED_SOURCES", "reddit")
    get_settings.cache_clear()
    with pytest.raises(MltradeError, match="REDDIT_CLIENT_ID is not set"):
        run_news(warehouse, get_settings(), ["reddit"], START, END, "t1")


def test_a_naive_window_is_refused(warehouse, news_env) -> None:
    with pytest.raises(Exception, match="UTC-aware"):
        run_news(warehouse, news_env, ["fixtures"], datetime(2024, 3, 1), END, "t1")
    assert START.tzinfo is UTC
