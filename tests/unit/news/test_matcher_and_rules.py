"""The symbol matcher and the quarantine rules, item by item (bad input included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.news import RawItem, story_key
from pipelines.news.matcher import SymbolMatcher, core_name
from pipelines.news.validate import MAX_BODY_CHARS, check, parse_time

UNIVERSE = ["AAPL", "MSFT", "BRK.B", "IBM"]
NAMES = {
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corp",
    "IBM": "International Business Machines",
    "BRK.B": "Berkshire Hathaway Class B",
    "XOM": "Exxon Mobil Corp",
}
NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def matcher() -> SymbolMatcher:
    return SymbolMatcher(UNIVERSE, NAMES)


def raw(**kw) -> RawItem:
    base = dict(
        source="alpaca",
        item_id="1",
        kind="article",
        published="2024-03-05T14:00:00Z",
        headline="Apple launches a phone",
        vendor_symbols=("AAPL",),
    )
    return RawItem(**{**base, **kw})


def test_core_names_drop_legal_suffixes() -> None:
    assert core_name("Apple Inc.") == "Apple"
    assert core_name("Microsoft Corp") == "Microsoft"
    assert core_name("Berkshire Hathaway Class B") == "Berkshire Hathaway"
    assert core_name("Abercrombie &amp; Fitch Company A") == "Abercrombie & Fitch"


def test_cashtags_names_and_tags(matcher: SymbolMatcher) -> None:
    assert matcher.text("Buying $aapl and $BRK.B today") == ["AAPL", "BRK.B"]
    assert matcher.text("$XOM is not ours, $5 is money, $100M a deal") == []
    assert matcher.text("Microsoft and Berkshire Hathaway agree") == ["MSFT", "BRK.B"]
    assert matcher.text("an apple a day; microsoft lower case") == []  # names are proper nouns
    assert matcher.text("AAPL rose") == []  # bare tickers are not matched (ALL, IT, ON...)
    assert matcher.vendor([" aapl", "ZZZZ", "MSFT"]) == (["AAPL", "MSFT"], ["ZZZZ"])


def test_time_parsing_states_the_problem() -> None:
    assert parse_time("2024-03-05T14:00:00Z")[0] == datetime(2024, 3, 5, 14, tzinfo=UTC)
    assert parse_time("2024-03-05T09:00:00-05:00")[0] == datetime(2024, 3, 5, 14, tzinfo=UTC)
    assert parse_time(None) == (None, "news_missing_time")
    assert parse_time("  ") == (None, "news_missing_time")
    assert parse_time("yesterday") == (None, "news_bad_time")
    assert parse_time("2024-03-05T14:00:00") == (None, "news_time_without_zone")
    assert parse_time(datetime(2024, 3, 5, 14)) == (None, "news_time_without_zone")


BAD = [
    (raw(published=None), "news_missing_time"),
    (raw(published="2024-03-05 14:00"), "news_time_without_zone"),
    (raw(published="5 March"), "news_bad_time"),
    (raw(published="2024-03-06T14:00:00Z"), "news_future_time"),
    (raw(headline="   ", summary="", body="\x00"), "news_empty_text"),
    (raw(vendor_symbols=("ZZZZ",), headline="Zeta news"), "news_unknown_symbols"),
    (raw(vendor_symbols=(), headline="$XOM rallies"), "news_unknown_symbols"),
]


@pytest.mark.parametrize(("item", "code"), BAD, ids=[c for _, c in BAD])
def test_each_bad_item_is_quarantined_with_its_reason(matcher, item: RawItem, code: str):
    good = raw(item_id="good")
    out = check([item, good], matcher, NOW)
    assert [r.expectation for r in out.rejected] == [code]
    assert out.rejected[0].reason.startswith("alpaca:1: ")
    assert [i.item_id for i in out.items] == ["good"]  # the good neighbour is kept


def test_cleaned_items_are_kept(matcher: SymbolMatcher) -> None:
    items = [
        raw(item_id="lower", vendor_symbols=("aapl", "zzzz")),
        raw(item_id="big", body="x" * (MAX_BODY_CHARS + 10)),
        raw(item_id="bad-bytes", headline="Apple \x00gains \ud800today"),
        raw(item_id="cashtag", vendor_symbols=(), headline="Loving $msft and $XOM"),
        raw(item_id="offset", published="2024-03-05T09:00:00-05:00"),
    ]
    out = check(items, matcher, NOW)
    assert out.rejected == []
    got = {i.item_id: i for i in out.items}
    assert got["lower"].symbols == ("AAPL",)
    assert len(got["big"].body) == MAX_BODY_CHARS
    assert got["bad-bytes"].headline == "Apple gains today"
    assert got["cashtag"].symbols == ("MSFT",)
    assert got["offset"].published_at == datetime(2024, 3, 5, 14, tzinfo=UTC)


def test_duplicates_in_a_batch(matcher: SymbolMatcher) -> None:
    same = [raw(), raw()]
    assert len(check(same, matcher, NOW).items) == 1
    conflicting = check([raw(), raw(headline="Apple recalls a phone")], matcher, NOW)
    assert [i.headline for i in conflicting.items] == ["Apple launches a phone"]
    assert [r.expectation for r in conflicting.rejected] == ["news_conflicting_dup"]


def test_window_is_half_open_and_tolerates_small_clock_skew(matcher: SymbolMatcher) -> None:
    start, end = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    items = [
        raw(item_id=str(k), published=(start + timedelta(minutes=m)).isoformat())
        for k, m in enumerate((0, 59, 60, -1))
    ]
    out = check(items, matcher, NOW, start, end)
    assert [i.item_id for i in out.items] == ["0", "1"]
    assert out.out_of_window == 2
    skew = check([raw(published=(NOW + timedelta(minutes=2)).isoformat())], matcher, NOW)
    assert len(skew.items) == 1


def test_syndicated_headlines_share_a_story_key() -> None:
    assert story_key("Apple beats estimates, shares rise", "a:1") == story_key(
        "APPLE BEATS ESTIMATES — shares rise!", "b:2"
    )
    assert story_key("", "a:1") != story_key("", "a:2")  # comments are their own story
