"""The Yahoo corpus: chart answers as Yahoo would send them, through yfinance (unmodified) and
the Yahoo source, through the gate, into the warehouse. Each case states exactly which bars
are stored, which rows are quarantined under which rule (with Yahoo's item kept), which
sessions are recorded missing and which symbol fails the run; no good bar may be lost.

One local Yahoo server for the module (``tests/support/yahoo_chart_server.py``), reached
through the source's own setting (``YahooSource(url=…)``, ``YAHOO_DATA_URL``); each symbol's
data request gets exactly the case's chart. The cases and their checks are shared with the
Alpaca corpus (``tests/support/corpus.py``). Where yfinance decides before the gate sees
anything (docs/sources.md, "What yfinance decides"), the case says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

os.environ.setdefault("YF_DISABLE_CURL_CFFI", "1")

from pipelines.ratelimit import TokenBucket  # noqa: E402
from pipelines.sources.retry import RetryPolicy  # noqa: E402
from pipelines.sources.sample import SampleSource  # noqa: E402
from pipelines.sources.yahoo import YahooSource  # noqa: E402
from tests.support.cli import run_cli  # noqa: E402
from tests.support.corpus import (  # noqa: E402
    DAYS,
    END,
    EXTRA,
    START,
    SYMBOLS,
    Body,
    Case,
    Corpus,
    Edit,
    Outcome,
    add,
    bad,
    extra,
    level_shift,
    map_to,
    ok,
    reverse,
    rows,
    set_fields,
    stale,
)
from tests.support.yahoo_chart_server import (  # noqa: E402
    NOT_FOUND,
    Chart,
    YahooChartServer,
    chart_document,
    sample_items,
    session_open,
)

# yfinance 1.7 on pandas 3 warns about its own use of inplace=; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

BASE = sample_items(SYMBOLS, START, END)  # {symbol: [item per session]}, t = the open (epoch)


def _at(year: int, month: int, day: int) -> int:
    """14:30 UTC (09:30 New York in winter) of a day that may not be a session."""
    return int(datetime(year, month, day, 14, 30, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Answer:
    """Instead of a chart built from the items: this status and body for the data request."""

    status: int
    body: str


def _duplicate(symbol: str, day: int, **fields: object) -> Edit:
    """Yahoo sends the bar of ``day`` a second time (changed by ``fields``)."""

    def edit(bars: Body) -> None:
        bars[symbol].append({**bars[symbol][day], **fields})

    return edit


ALL_AAPL = {("AAPL", d) for d in DAYS}
NO_DATA = "Yahoo does not know MSFT or has no prices|Yahoo returned no bars"
CASES: dict[str, Case] = {
    # values: nulls, NaN, text, ranges, consistency
    "price_null": bad("AAPL", 0, "close_not_null", "close is missing", c=None),
    "price_nan_literal": bad("AAPL", 4, "open_not_null", "open is missing", o=float("nan")),
    # yfinance makes a null volume 0; the source puts Yahoo's null back
    "volume_null": bad("IBM", 2, "volume_not_null", "volume is missing", v=None),
    "volume_null_on_a_flat_bar": bad(
        "IBM",
        3,
        "volume_not_null",
        "volume is missing",
        v=None,
        o=lambda i: i["c"],
        h=lambda i: i["c"],
        l=lambda i: i["c"],
    ),  # fmt: skip
    # yfinance turns "130.85" into 130.85 and True into 1.0; the source keeps what was sent
    "price_as_text": bad("AAPL", 1, "types_ok", "is str, not a number", c=lambda i: str(i["c"])),
    "volume_as_text": bad("IBM", 0, "types_ok", "is str, not a number", v="6155300"),
    "price_as_bool": bad("AAPL", 2, "types_ok", "is bool", o=True),
    # text that is not a number, a list or an object: yfinance cannot build its frame at all,
    # so the whole symbol fails (named), not just that bar
    "price_not_a_number": Case(
        set_fields("AAPL", 3, h="n/a"), lost=ALL_AAPL, error=("AAPL", "not a price series")
    ),
    "price_as_list": Case(
        set_fields("AAPL", 1, l=[1, 2]), lost=ALL_AAPL, error=("AAPL", "not a price series")
    ),
    "price_infinity_literal": bad("IBM", 4, "high_positive", "high inf", h=float("inf")),
    "price_zero": bad("AAPL", 1, "close_positive", "close 0", c=0),
    "price_negative": bad("IBM", 0, "low_positive", "low -1", l=-1),
    "price_absurd": bad("IBM", 1, "high_positive", "absurd", h=2e12),
    "high_below_low": bad(
        "AAPL", 2, "high_ge_low", "< low", h=lambda i: i["l"] - 1, o=lambda i: i["l"] - 1
    ),
    "close_above_high": bad("IBM", 3, "high_ge_close", "< close", c=lambda i: i["h"] + 1),
    "open_below_low": bad("AAPL", 3, "open_ge_low", "open", o=lambda i: i["l"] - 1),
    "volume_negative": bad("IBM", 4, "volume_non_negative", "volume -5", v=-5),
    "zero_volume_price_moved": bad("AAPL", 4, "zero_volume_no_move", "volume 0 but", v=0),
    "zero_volume_flat_bar_is_fine": ok(
        v=0, o=lambda i: i["c"], h=lambda i: i["c"], l=lambda i: i["c"]
    ),
    "integer_prices_are_fine": ok(
        o=lambda i: int(i["c"]), h=lambda i: int(i["c"]) + 1, l=lambda i: int(i["c"]) - 1
    ),
    # Yahoo's way of saying "no trades that day": every value null. Not a bar (yfinance drops
    # it too): the session is recorded missing.
    "all_values_null_is_no_bar": Case(
        set_fields("AAPL", 2, o=None, h=None, l=None, c=None, v=None),
        lost={("AAPL", DAYS[2])},
        missing={"AAPL": [DAYS[2]]},
    ),
    # times: epoch seconds; yfinance reads the New York date of each
    "time_null": Case(
        set_fields("IBM", 1, t=None),
        [("vendor_time_ok", "no bar time")],
        {("IBM", DAYS[1])},
        missing={"IBM": [DAYS[1]]},
    ),
    # Yahoo stamps a daily bar at the open; any time of the New York day is that session
    # (there is no bar_time rule for Yahoo: yfinance keeps only the date)
    "time_at_the_close_is_the_same_session": ok(t=lambda i: i["t"] + 390 * 60),
    # A stamp moved onto the day before: two different bars for the 5th, neither stored (a
    # wrong price is worse than a missing one), the 6th recorded missing
    "time_moved_onto_the_previous_session": Case(
        set_fields("IBM", 2, t=lambda i: i["t"] - 86_400),
        [("unique_symbol_ts", "every version is held back")] * 2,
        {("IBM", DAYS[1]), ("IBM", DAYS[2])},
        missing={"IBM": [DAYS[2]]},  # the 5th is accounted for by its quarantined rows
    ),
    # sessions and the window
    "weekend_bar": extra("AAPL", _at(2010, 1, 2), "nyse_session", "(a weekend)"),
    "holiday_bar": extra("IBM", _at(2010, 1, 1), "nyse_session", "exchange holiday"),
    "bar_before_start": extra("IBM", _at(2009, 12, 31), "in_window", "outside the request"),
    # The source asks Yahoo from --start up to today (to see every later split) and cuts the
    # answer at --end: a later bar is expected, neither stored nor quarantined.
    "bar_after_end_is_cut": Case(
        add("AAPL", {**BASE["AAPL"][0], "t": session_open(date(2010, 1, 11))})
    ),
    "bar_after_the_vendors_clock": Case(
        lambda bars: None,
        [("in_window", "after the vendor's own clock")] * 2,
        {("AAPL", DAYS[4]), ("IBM", DAYS[4])},
        clock="Fri, 08 Jan 2010 18:00:00 GMT",  # 13:00 New York: the 8th had not closed
    ),
    # copies (yfinance keeps one item per day, silently; the source passes every one on)
    "exact_duplicate": Case(
        _duplicate("IBM", 2), [("exact_copy", "the first copy is loaded")]
    ),  # fmt: skip
    "conflicting_duplicate": Case(
        _duplicate("IBM", 2, c=BASE["IBM"][2]["c"] - 0.01),
        [("unique_symbol_ts", "every version is held back")] * 2,
        {("IBM", DAYS[2])},
    ),
    # the last session twice (Yahoo's "live" row): yfinance would keep the later one
    "conflicting_duplicate_of_the_last_session": Case(
        _duplicate("AAPL", 4, t=BASE["AAPL"][4]["t"] + 3600, c=BASE["AAPL"][4]["c"] + 0.01),
        [("unique_symbol_ts", "every version is held back")] * 2,
        {("AAPL", DAYS[4])},
    ),
    "items_out_of_order_are_fine": Case(reverse),
    # series-level
    "stale_repeats": Case(
        stale, [("not_stale", "looks frozen")] * 2, {("IBM", DAYS[2]), ("IBM", DAYS[3])}
    ),
    "one_bar_spike": bad(
        "AAPL",
        2,
        "no_unexplained_jump",
        "no corporate action",
        h=lambda i: i["c"] * 100,
        c=lambda i: i["c"] * 100,
    ),  # fmt: skip
    "level_shift_only_the_break_is_caught": Case(
        level_shift,
        [("no_unexplained_jump", "moved")],
        {("IBM", d) for d in DAYS[2:]},
        stored_instead={("IBM", DAYS[d], float(BASE["AAPL"][d]["c"])) for d in (3, 4)},
    ),
    # completeness: every requested symbol is accounted for
    "symbol_unknown_404": Case(
        lambda bars: None,
        error=(EXTRA, "Yahoo does not know MSFT"),
        symbols=[*SYMBOLS, EXTRA],
        missing={EXTRA: DAYS},
    ),  # fmt: skip
    "symbol_unknown_404_recorded": Case(
        lambda bars: None,
        policy="record",
        symbols=[*SYMBOLS, EXTRA],
        recorded=(EXTRA, "Yahoo does not know MSFT"),
        missing={EXTRA: DAYS},
    ),  # fmt: skip
    "symbol_without_bars": Case(
        map_to(EXTRA, []), error=(EXTRA, NO_DATA), symbols=[*SYMBOLS, EXTRA]
    ),
    "symbol_without_bars_recorded": Case(
        map_to(EXTRA, []),
        policy="record",
        symbols=[*SYMBOLS, EXTRA],
        recorded=(EXTRA, NO_DATA),
        missing={EXTRA: DAYS},
    ),  # fmt: skip
    "symbol_without_bars_in_the_window": Case(
        map_to(EXTRA, [{**BASE["IBM"][0], "t": session_open(date(2010, 1, 11))}]),
        error=(EXTRA, "Yahoo returned no bars"),
        symbols=[*SYMBOLS, EXTRA],
    ),
    "data_404_after_the_time_zone_answered": Case(
        map_to(EXTRA, Answer(404, json.dumps(NOT_FOUND))),
        error=(EXTRA, "symbol may be delisted"),
        symbols=[*SYMBOLS, EXTRA],
    ),
    # an answer that is not a chart is not "no data": it fails whatever the policy
    "answer_not_a_chart": Case(
        map_to(EXTRA, Answer(200, "{}")),
        policy="record",
        error=(EXTRA, "is not a chart"),
        symbols=[*SYMBOLS, EXTRA],
    ),  # fmt: skip
}


@pytest.fixture(scope="module")
def yahoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YahooChartServer]:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yf-cache")))
    with YahooChartServer() as server:
        yield server


def vendor_for(server: YahooChartServer) -> YahooSource:
    return YahooSource(
        url=server.url, retry=RetryPolicy(2, 0.0, 0.0), bucket=TokenBucket(1_000_000)
    )


def serve(server: YahooChartServer, body: Body) -> None:
    """Each symbol's chart: built from its items, or an exact answer; absent: Yahoo's 404."""
    server.charts.clear()
    server.bodies.clear()
    for symbol, items in body.items():
        if isinstance(items, Answer):
            server.charts[symbol] = chart_document(symbol, BASE["IBM"])  # its time zone
            server.bodies[symbol] = (items.status, items.body)
        else:
            server.charts[symbol] = chart_document(symbol, items)


@pytest.fixture(scope="module")
def corpus(engine: sa.Engine, yahoo: YahooChartServer) -> tuple[Corpus, dict[str, Outcome]]:
    yahoo_corpus = Corpus(
        CASES, BASE, yahoo, lambda body: serve(yahoo, body), lambda: vendor_for(yahoo)
    )
    return yahoo_corpus, yahoo_corpus.outcomes(engine)


@pytest.mark.parametrize("name", list(CASES))
def test_yahoo_response(name: str, corpus: tuple[Corpus, dict[str, Outcome]]) -> None:
    yahoo_corpus, outcomes = corpus
    yahoo_corpus.check(name, outcomes[name])


def test_every_kind_of_the_brief_is_covered() -> None:
    """Window, completeness, sessions, null/NaN, zero volume, OHLC, duplicates, a 404."""
    assert {
        "bar_before_start", "bar_after_end_is_cut", "bar_after_the_vendors_clock",
        "symbol_without_bars", "symbol_without_bars_recorded", "weekend_bar", "holiday_bar",
        "price_null", "price_nan_literal", "zero_volume_price_moved", "high_below_low",
        "exact_duplicate", "conflicting_duplicate", "symbol_unknown_404",
    } <= set(CASES)  # fmt: skip
    assert len(CASES) >= 40


def test_mltrade_ingest_from_yahoo_as_a_user_runs_it(
    yahoo: YahooChartServer,
    warehouse: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``mltrade ingest --source yahoo`` with ``YAHOO_DATA_URL``: Yahoo's split-adjusted
    answer stored as traded, the split and dividend in ``corporate_actions``, one data request
    per symbol (the actions fetch hands its answers to the bars fetch)."""
    start, end = date(2010, 1, 4), date(2010, 1, 29)
    split_day, dividend_day = date(2010, 1, 19), date(2010, 1, 11)  # the split is fictional
    yahoo.bodies.clear()
    yahoo.requests.clear()
    yahoo.charts = {
        "IBM": Chart("IBM", start, end, {split_day: 2.0}, {dividend_day: 0.55}).json(),
        "AAPL": Chart("AAPL", start, end).json(),
    }
    monkeypatch.setenv("YAHOO_DATA_URL", yahoo.url)
    monkeypatch.setenv("YAHOO_REQUESTS_PER_MINUTE", "600000")
    monkeypatch.setenv("UNIVERSE", "AAPL,IBM")
    monkeypatch.setenv("DATA_SOURCE", "sample")  # --source overrides it (and is undone after)
    done = run_cli(capsys, "ingest", "--source", "yahoo", "--start", str(start), "--end", str(end))
    assert done.code == 0, done.err
    stored = rows(warehouse, "SELECT symbol, session_date, close, volume, source FROM bars")
    expected = SampleSource().fetch_daily_bars(start, end, ["AAPL", "IBM"])
    assert len(stored) == len(expected) == 38
    as_traded = {(r.symbol, r.session_date): (r.close, r.volume) for r in expected.itertuples()}
    for row in stored:
        assert (row.close, row.volume) == pytest.approx(as_traded[row.symbol, row.session_date])
    assert {row.source for row in stored} == {"yahoo"}
    actions = rows(warehouse, "SELECT symbol, ex_date, kind, value FROM corporate_actions "
                   "ORDER BY ex_date")  # fmt: skip
    assert [tuple(a) for a in actions] == [
        ("IBM", dividend_day, "dividend", pytest.approx(0.55)),  # Yahoo sent 0.275
        ("IBM", split_day, "split", 2.0),
    ]
    assert rows(warehouse, "SELECT count(*) FROM quarantine")[0][0] == 0
    assert sorted(yahoo.data_requests()) == ["AAPL", "IBM"]
