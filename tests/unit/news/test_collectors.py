"""The three collectors through their real client libraries against a local server speaking
each vendor's protocol (tests/support/news_servers.py): paging, windows, credentials, and the
vendors' bad input. Each bad case ends stored, quarantined with a reason, or as one clear
error line; good neighbours are never lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.errors import DataSourceError
from pipelines.news.matcher import SymbolMatcher
from pipelines.news.sources.alpaca import AlpacaNewsSource
from pipelines.news.sources.newsapi import NewsApiSource, queries
from pipelines.news.sources.reddit import RedditSource
from pipelines.news.validate import check
from pipelines.sources.retry import RetryPolicy
from tests.support import news_servers as ns
from tests.support.news_servers import Fault, NewsServers

START = datetime(2024, 3, 4, 14, tzinfo=UTC)
END = START + timedelta(hours=6)
NOW = END + timedelta(minutes=1)
UNIVERSE = ["AAPL", "MSFT", "IBM"]
NAMES = {"AAPL": "Apple Inc.", "MSFT": "Microsoft Corp", "IBM": "IBM"}
FAST = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.05)
HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


def iso(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def server() -> Iterator[NewsServers]:
    s = NewsServers()
    yield s
    s.close()


@pytest.fixture(scope="module")
def matcher() -> SymbolMatcher:
    return SymbolMatcher(UNIVERSE, NAMES)


def alpaca(server: NewsServers, key: str = ns.KEY) -> AlpacaNewsSource:
    return AlpacaNewsSource(key, ns.SECRET, server.url, FAST)


def newsapi(server: NewsServers, key: str = ns.NEWSAPI_KEY, **kw) -> NewsApiSource:
    return NewsApiSource(key, server.url, retry=FAST, names=NAMES, **kw)


def reddit(server: NewsServers, secret: str = ns.REDDIT_SECRET) -> RedditSource:
    return RedditSource(
        ns.REDDIT_ID, secret, "mltrade-test/0.1", ["stocks"], server.url, server.url, retry=FAST
    )


def codes(rejected) -> list[str]:
    return sorted(r.expectation for r in rejected)


# --- Alpaca News --------------------------------------------------------------------------


def test_alpaca_pages_and_tags(server: NewsServers, matcher: SymbolMatcher) -> None:
    server.alpaca = [
        ns.alpaca_article(i, iso(i), ["AAPL"] if i % 2 else ["msft"], f"Story {i}")
        for i in range(120)
    ]
    got = alpaca(server).collect(START, END, UNIVERSE)
    assert got.requests == 3  # 50 + 50 + 20
    assert sorted(int(i.item_id) for i in got.items) == list(range(120))
    out = check(got.items, matcher, NOW, START, END)
    assert len(out.items) == 120 and not out.rejected
    assert {i.symbols for i in out.items} == {("AAPL",), ("MSFT",)}  # lower-case tag fixed
    assert all(i.body == "<p>Body of the story.</p>" for i in out.items[:1])


@pytest.mark.parametrize(
    "fault",
    [
        Fault(truncate=True),  # truncated JSON
        Fault(status=502, body=HTML, content_type="text/html"),  # an HTML error page
        Fault(
            status=429, body='{"message": "too many requests."}', headers={"Retry-After": "0"}
        ),  # 429 with Retry-After
        Fault(status=429, body='{"message": "too many requests."}'),  # and without
        Fault(status=200, body=""),  # empty body
    ],
    ids=["truncated-json", "html-502", "429-retry-after", "429-bare", "empty-body"],
)
def test_alpaca_transient_faults_are_retried_and_lose_nothing(server, fault: Fault) -> None:
    server.alpaca = [ns.alpaca_article(i, iso(i), ["AAPL"], f"Story {i}") for i in range(60)]
    server.faults["alpaca"] = [Fault(), fault]  # the second page misbehaves once
    got = alpaca(server).collect(START, END, UNIVERSE)
    assert sorted(int(i.item_id) for i in got.items) == list(range(60))


def test_alpaca_expired_credentials_fail_with_one_line(server: NewsServers) -> None:
    with pytest.raises(DataSourceError) as err:
        alpaca(server, key="expired-key").collect(START, END, UNIVERSE)
    message = str(err.value)
    assert "ALPACA_API_KEY" in message and "\n" not in message
    assert "expired-key" not in message and ns.SECRET not in message


def test_alpaca_bad_items_are_quarantined(server: NewsServers, matcher) -> None:
    server.alpaca = [
        ns.alpaca_article(1, iso(1), ["AAPL"], "Good story"),
        ns.alpaca_article(2, None, ["AAPL"], "No time"),
        ns.alpaca_article(3, "2024-03-04T15:00:00", ["AAPL"], "No zone"),
        ns.alpaca_article(5, iso(5), ["ZZZZ"], "Unknown ticker only"),
        ns.alpaca_article(6, iso(6), ["AAPL"], "", content="", summary=""),
    ]
    got = alpaca(server).collect(START, END, ["AAPL", "ZZZZ"])
    out = check(got.items, matcher, NOW, START, END)
    assert [i.item_id for i in out.items] == ["1"]
    assert codes(out.rejected) == [
        "news_empty_text",
        "news_missing_time",
        "news_time_without_zone",
        "news_unknown_symbols",
    ]


def test_alpaca_repeated_page_token_is_reported(server: NewsServers) -> None:
    server.alpaca = [ns.alpaca_article(i, iso(i), ["AAPL"], f"S {i}") for i in range(60)]
    loop = Fault(status=200, body='{"news": [], "next_page_token": "same"}')
    server.faults["alpaca"] = [loop, loop]
    with pytest.raises(DataSourceError, match="repeated page token"):
        alpaca(server).collect(START, END, UNIVERSE)


# --- NewsAPI ------------------------------------------------------------------------------


def test_newsapi_queries_fit_its_limit() -> None:
    many = {f"S{i}": f"Company number {i} Inc" for i in range(100)}
    qs = queries(list(many), many)
    assert len(qs) > 1 and all(len(q) <= 500 for q in qs)
    assert sum(q.count(" OR ") + 1 for q in qs) == 100
    assert queries(["IBM", "XYZ"], {"IBM": "IBM"}) == ['"IBM" OR "$XYZ"']


def test_newsapi_pages_and_matches_names(server: NewsServers, matcher) -> None:
    server.newsapi = [
        ns.newsapi_article(f"https://x.test/{i}", iso(i), f"Apple story {i}") for i in range(150)
    ]
    got = newsapi(server).collect(START, END, UNIVERSE)
    assert got.requests == 2 and len(got.items) == 150
    out = check(got.items, matcher, NOW, START, END)
    assert len(out.items) == 150 and {i.symbols for i in out.items} == {("AAPL",)}


def test_newsapi_top_headlines(server: NewsServers) -> None:
    server.newsapi = [ns.newsapi_article("https://x.test/h", iso(1), "Markets: $MSFT up")]
    got = newsapi(server, top_headlines=True).collect(START, END, ["IBM"])
    assert [i.item_id for i in got.items] == ["https://x.test/h"]
    assert any("/v2/top-headlines" in path for _, _, path in server.requests)


def test_newsapi_invalid_key_fails_with_one_line(server: NewsServers) -> None:
    with pytest.raises(DataSourceError) as err:
        newsapi(server, key="wrong-key").collect(START, END, UNIVERSE)
    assert "apiKeyInvalid" in str(err.value) and "wrong-key" not in str(err.value)


def test_newsapi_rate_limited_is_retried_then_fails_clearly(server: NewsServers) -> None:
    server.newsapi = [ns.newsapi_article("https://x.test/1", iso(1), "Apple story")]
    limited = Fault(
        status=429,
        body='{"status":"error","code":"rateLimited","message":"slow"}',
        headers={"Retry-After": "0"},
    )
    server.faults["newsapi"] = [limited]
    assert len(newsapi(server).collect(START, END, UNIVERSE).items) == 1
    server.faults["newsapi"] = [limited] * 3
    with pytest.raises(DataSourceError, match="rateLimited"):
        newsapi(server).collect(START, END, UNIVERSE)


def test_newsapi_result_cap_keeps_what_came(server: NewsServers) -> None:
    server.newsapi = [
        ns.newsapi_article(f"https://x.test/{i}", iso(i), f"Apple story {i}") for i in range(150)
    ]
    server.max_results = 100
    got = newsapi(server).collect(START, END, UNIVERSE)
    assert len(got.items) == 100  # maximumResultsReached on page 2: page 1 is kept


@pytest.mark.parametrize(
    "fault",
    [Fault(status=502, body=HTML, content_type="text/html"), Fault(truncate=True)],
    ids=["html-502", "truncated-json"],
)
def test_newsapi_transient_faults(server: NewsServers, fault: Fault) -> None:
    server.newsapi = [ns.newsapi_article("https://x.test/1", iso(1), "Apple story")]
    server.faults["newsapi"] = [fault]
    assert len(newsapi(server).collect(START, END, UNIVERSE).items) == 1


def test_newsapi_bad_items(server: NewsServers, matcher: SymbolMatcher) -> None:
    server.newsapi = [
        ns.newsapi_article("https://x.test/ok", iso(1), "Apple story"),
        ns.newsapi_article("https://x.test/none", None, "Apple story without time"),
        ns.newsapi_article(
            "https://x.test/xom", iso(2), "Buy $XOM, Apple says nothing", description=""
        ),
        ns.newsapi_article("https://x.test/xom2", iso(3), "Only $XOM today"),
    ]
    got = newsapi(server).collect(START, END, ["AAPL", "XOM"])
    out = check(got.items, matcher, NOW, START, END)
    assert sorted(i.item_id for i in out.items) == ["https://x.test/ok", "https://x.test/xom"]
    assert codes(out.rejected) == ["news_missing_time", "news_unknown_symbols"]


def test_newsapi_non_utf8_text_is_stored_readable(server: NewsServers, matcher) -> None:
    good = ns.newsapi_article("https://x.test/1", iso(1), "Apple caf\u00e9 story")
    body = (
        ('{"status":"ok","totalResults":1,"articles":[' + __import__("json").dumps(good) + "]}")
        .encode()
        .replace(b"caf\\u00e9", b"caf\xe9")
    )
    server.faults["newsapi"] = [Fault(status=200, body=body)]
    out = check(newsapi(server).collect(START, END, UNIVERSE).items, matcher, NOW, START, END)
    assert len(out.items) == 1 and out.items[0].headline.startswith("Apple caf")


# --- Reddit -------------------------------------------------------------------------------


def _epoch(minutes: int) -> float:
    return (START + timedelta(minutes=minutes)).timestamp()


def test_reddit_submissions_and_comments(server: NewsServers, matcher: SymbolMatcher) -> None:
    server.reddit["stocks"] = {
        "t3": [
            ns.reddit_thing("t3", f"s{i}", _epoch(i), "thoughts?", title=f"$AAPL post {i}")
            for i in range(150)
        ]
        + [ns.reddit_thing("t3", "old", _epoch(-10), "old", title="$AAPL old")],
        "t1": [ns.reddit_thing("t1", f"c{i}", _epoch(i), "$msft looks great") for i in range(5)],
    }
    got = reddit(server).collect(START, END, UNIVERSE)
    kinds = [i.kind for i in got.items]
    assert kinds.count("submission") == 150 and kinds.count("comment") == 5  # "old" not read
    out = check(got.items, matcher, NOW, START, END)
    assert len(out.items) == 155
    assert {i.symbols for i in out.items} == {("AAPL",), ("MSFT",)}
    assert any(p.startswith("/r/stocks/new") and "after=t3_" in p for _, _, p in server.requests)


def test_reddit_expired_credentials_fail_with_one_line(server: NewsServers) -> None:
    with pytest.raises(DataSourceError) as err:
        reddit(server, secret="expired").collect(START, END, UNIVERSE)
    assert "REDDIT_CLIENT_ID" in str(err.value) and "expired" not in str(err.value)


def test_reddit_429_is_retried(server: NewsServers) -> None:
    server.reddit["stocks"] = {"t3": [ns.reddit_thing("t3", "a", _epoch(1), "", title="$IBM")]}
    server.faults["reddit"] = [
        Fault(status=429, body='{"message": "Too Many Requests"}', headers={"Retry-After": "0"})
    ]
    assert len(reddit(server).collect(START, END, UNIVERSE).items) == 1


def test_reddit_rate_limit_headers_are_honoured(server: NewsServers) -> None:
    """prawcore waits for x-ratelimit-reset before the next request when none remain."""
    server.reddit["stocks"] = {"t3": [ns.reddit_thing("t3", "a", _epoch(1), "", title="$IBM")]}
    server.ratelimit = {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-used": "100",
        "x-ratelimit-reset": "1",
    }
    reddit(server).collect(START, END, UNIVERSE)
    listings = [t for t, _, p in server.requests if p.startswith("/r/")]
    assert len(listings) == 2 and listings[1] - listings[0] >= 0.9  # a lower bound only


def test_reddit_bad_items(server: NewsServers, matcher: SymbolMatcher) -> None:
    server.reddit["stocks"] = {
        "t3": [
            ns.reddit_thing("t3", "ok", _epoch(2), "x" * 300_000, title="$AAPL huge post"),
            ns.reddit_thing("t3", "future", _epoch(60 * 48), "", title="$AAPL tomorrow"),
        ],
        "t1": [
            ns.reddit_thing("t1", "notime", None, "$AAPL no time"),
            ns.reddit_thing("t1", "empty", _epoch(3), "   "),
        ],
    }
    out = check(reddit(server).collect(START, END, UNIVERSE).items, matcher, NOW, START, END)
    assert [i.item_id for i in out.items] == ["t3_ok"]
    assert len(out.items[0].body) == 100_000
    assert codes(out.rejected) == ["news_empty_text", "news_future_time", "news_missing_time"]
