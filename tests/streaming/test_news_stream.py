"""Live news: the local server's /v1beta1/news -> alpaca-py NewsDataStream -> Redis Streams ->
processor -> news_items (checked, quarantined, scored), end to end and offline."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alpaca.data.live import NewsDataStream
from alpaca.data.models.news import News

from tests.support.alpaca_stream_server import AlpacaStreamServer, news_article
from tests.support.streaming import ServiceThread, count_rows, stream_settings, wait_for


def test_news_data_stream_parses_the_servers_articles() -> None:
    """alpaca-py's own News model accepts what the server sends (fields and msgpack times)."""
    published = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    got: list[Any] = []
    with AlpacaStreamServer() as server:
        stream = NewsDataStream("test-key", "test-secret", url_override=server.news_url)

        async def on_news(article: Any) -> None:
            got.append(article)

        stream.subscribe_news(on_news, "*")
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        wait_for(server.news_subscribers, "the news subscription")
        server.publish([news_article(7, published, ["AAPL"], "Apple beats estimates")])
        wait_for(lambda: got, "the article")
        asyncio.run_coroutine_threadsafe(stream.close(), stream._loop).result(5)
        stream.stop()
        thread.join(10)
    assert isinstance(got[0], News)
    assert (got[0].id, got[0].headline, got[0].symbols) == (7, "Apple beats estimates", ["AAPL"])
    assert got[0].created_at == published


def test_streamed_news_is_stored_quarantined_deduplicated_and_scored(
    warehouse: sa.Engine, redis_url: str, bus_prefix: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    good = news_article(1, now - timedelta(minutes=5), ["AAPL"], "Apple beats estimates")
    both = news_article(2, now - timedelta(minutes=4), ["MSFT", "IBM"], "Microsoft and IBM fall")
    no_time = news_article(3, None, ["AAPL"], "Apple story with no time")
    elsewhere = news_article(4, now, ["TSLA"], "Tesla story")  # not subscribed: never sent
    later = news_article(5, now, ["IBM"], "IBM names a new chief executive")
    with AlpacaStreamServer() as server:
        settings = stream_settings(
            redis_url, bus_prefix, server, stream_news=True, stream_news_url=server.news_url
        )
        with ServiceThread(settings, warehouse):
            wait_for(server.news_subscribers, "the news subscription")
            server.publish([good, both, no_time, elsewhere])
            server.publish([good])  # the same article again
            server.publish([later])  # in bus order: once it is scored, the copy was handled
            wait_for(lambda: count_rows(warehouse, "news_scores") == 6, "3 items, 2 scores each")
            wait_for(lambda: count_rows(warehouse, "quarantine") == 1, "the timeless article")
    with warehouse.connect() as conn:
        items = conn.execute(
            sa.text("SELECT source, item_id, symbols, published_at FROM news_items ORDER BY 2")
        ).all()
        quarantined = conn.execute(sa.text("SELECT source, expectation FROM quarantine")).one()
        scores = dict(
            conn.execute(sa.text("SELECT scorer, score FROM news_scores WHERE item_id = '1'")).all()
        )
    assert [(i.source, i.item_id, sorted(i.symbols)) for i in items] == [
        ("alpaca", "1", ["AAPL"]),
        ("alpaca", "2", ["IBM", "MSFT"]),  # one row, though two subscribed symbols named it
        ("alpaca", "5", ["IBM"]),
    ]
    assert items[0].published_at == good["created_at"]
    assert tuple(quarantined) == ("news:alpaca", "news_missing_time")
    assert scores["lm"] == 1.0  # "beats" is positive in the earnings list, nothing negative


def test_a_news_entry_keeps_the_article_and_writes_times_as_rfc3339() -> None:
    import json

    import msgpack

    from pipelines.streaming.events import news_entry

    published = datetime(2024, 3, 4, 14, 30, 5, tzinfo=UTC)
    article = news_article(9, None, ["AAPL"], "Apple story")
    article["created_at"] = msgpack.Timestamp.from_datetime(published)
    article["updated_at"] = "not a time"
    entry = news_entry(article, received_ns=1)
    payload = json.loads(entry["d"])
    assert entry["k"] == "n" and entry["rx"] == "1"
    assert payload["created_at"] == "2024-03-04T14:30:05Z"
    assert payload["updated_at"] == "not a time"  # as sent: the news rules judge it
    assert (payload["id"], payload["symbols"], payload["content"]) == (
        9,
        ["AAPL"],
        "<p>Body of the story.</p>",
    )
