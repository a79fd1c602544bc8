"""The vendor corpus machinery shared by the Alpaca and Yahoo corpus tests.

A *case* edits a vendor's answer for two symbols over five sessions (``Body``: symbol -> the
vendor's items, each a dict with ``t`` and the values ``o``, ``h``, ``l``, ``c``, ``v`` in the
vendor's own format) and states what the warehouse must end up with: which bars are stored,
which rows are quarantined under which rule (reason words), which symbol fails the run. Every
case gets its own symbols (``AAPL`` -> ``AAPL7``), so the plain cases go through one ingest;
a case with its own vendor clock or ``EMPTY_SYMBOL_POLICY`` runs alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa

from pipelines.errors import DataSourceError
from pipelines.ingest import ingest
from pipelines.sources.base import MarketDataSource
from tests.support.warehouse import empty_data_tables

SYMBOLS = ["AAPL", "IBM"]
EXTRA = "MSFT"  # the symbol the completeness cases ask for, or the vendor sends unasked
START, END = date(2010, 1, 4), date(2010, 1, 8)  # five sessions, Monday to Friday
DAYS = ["2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"]
Body = dict[str, Any]
Edit = Callable[[Body], None]


@dataclass(frozen=True)
class Case:
    edit: Edit  # changes the body in place
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (rule, reason words)
    lost: set[tuple[str, str]] = field(default_factory=set)  # base bars not stored
    error: tuple[str, str] | None = None  # (symbol, words): the run fails naming it
    policy: str = "fail"  # EMPTY_SYMBOL_POLICY
    symbols: list[str] = field(default_factory=lambda: list(SYMBOLS))
    clock: str | None = None  # the vendor's Date header
    stored_instead: set[tuple[str, str, float]] = field(default_factory=set)  # wrong but stored
    missing: dict[str, list[str]] | None = None  # symbol -> sessions recorded missing, if given
    recorded: tuple[str, str] | None = None  # (symbol, words): in symbols_without_data


DROP = object()  # as a field value: remove the key from the item


def set_fields(symbol: str, day: int, **fields: Any) -> Edit:
    """Set (a value, or a function of the item) or drop fields of one item."""

    def edit(bars: Body) -> None:
        item = bars[symbol][day]
        for key, value in fields.items():
            if value is DROP:
                item.pop(key, None)
            elif callable(value):
                item[key] = value(item)
            else:
                item[key] = value

    return edit


def bad(symbol: str, day: int, rule: str, words: str, **fields: Any) -> Case:
    """One field (or more) of one bar changed: that row alone is quarantined."""
    return Case(set_fields(symbol, day, **fields), [(rule, words)], {(symbol, DAYS[day])})


def ok(**fields: Any) -> Case:
    """A change to IBM's 2010-01-06 bar that is still a good bar: everything is stored."""
    return Case(set_fields("IBM", 2, **fields))


def add(symbol: str, item: Any) -> Edit:
    def edit(bars: Body) -> None:
        bars.setdefault(symbol, []).append(item)

    return edit


def extra(symbol: str, t: Any, rule: str, words: str) -> Case:
    """A bar added at time ``t`` (values of the symbol's first bar): quarantined, rest stored."""

    def edit(bars: Body) -> None:
        bars[symbol].append({**bars[symbol][0], "t": t})

    return Case(edit, [(rule, words)])


def each(*edits: Edit) -> Edit:
    def edit(bars: Body) -> None:
        for one in edits:
            one(bars)

    return edit


def map_to(symbol: str, value: Any) -> Edit:
    def edit(bars: Body) -> None:
        bars[symbol] = value

    return edit


def stale(bars: Body) -> None:
    """IBM's bar of the 5th repeated on the 6th and 7th (a frozen feed)."""
    for day in (2, 3):
        bars["IBM"][day] = {**bars["IBM"][1], "t": bars["IBM"][day]["t"]}


def level_shift(bars: Body) -> None:
    """IBM's series replaced by AAPL's from the 6th on."""
    for day in (2, 3, 4):
        bars["IBM"][day] = {**bars["AAPL"][day]}


def reverse(bars: Body) -> None:
    bars["AAPL"].reverse()


def renamed(i: int, symbol: str) -> str:
    return f"{symbol}{i}"  # AAPL -> AAPL7: every case has its own symbols


def rows(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


@dataclass
class Outcome:
    stored: set[tuple[str, str, float]]
    held: list[Any]  # quarantine rows
    failed: dict[str, str]  # symbol -> reason, from the run's summary
    recorded: dict[str, str]  # symbols_without_data, from the run's summary
    missing: dict[str, Any]  # validation_runs.summary["missing_sessions"]["by_symbol"]
    error: str


class VendorServer(Protocol):
    clock: str | None


@dataclass
class Corpus:
    """The cases of one vendor, its unedited answer and how to serve an answer."""

    cases: dict[str, Case]
    base: Body  # symbol -> items, for SYMBOLS over DAYS
    server: VendorServer
    serve: Callable[[Body], None]  # make the server send this body
    vendor: Callable[[], MarketDataSource]  # a fresh source pointed at the server

    def run(self, engine: sa.Engine, names: list[str], **kw: Any) -> Outcome:
        """One ingest of the cases ``names`` (their symbols renamed apart), as one answer."""
        empty_data_tables(engine)
        body: Body = {}
        asked: list[str] = []
        for i, name in enumerate(self.cases):
            if name in names:
                bars = copy.deepcopy(self.base)
                self.cases[name].edit(bars)
                body.update({renamed(i, s): items for s, items in bars.items()})
                asked += [renamed(i, s) for s in self.cases[name].symbols]
        self.serve(body)
        error = ""
        try:
            ingest(engine, self.vendor(), START, END, asked, "corpus", 1.0, **kw)
        except DataSourceError as exc:
            error = str(exc)
        stored = {(r.symbol, r.d, r.close) for r in rows(engine, "SELECT symbol, "
                  "session_date::text AS d, close FROM bars")}  # fmt: skip
        held = rows(engine, "SELECT symbol, expectation, reason, raw FROM quarantine ORDER BY id")
        (run,) = rows(engine, "SELECT summary FROM pipeline_runs WHERE run_id = 'corpus'")
        missing = rows(engine, "SELECT summary->'missing_sessions'->'by_symbol' AS m "
                       "FROM validation_runs WHERE run_id = 'corpus'")  # fmt: skip
        return Outcome(
            stored,
            held,
            run.summary.get("failed_symbols", {}),
            run.summary.get("symbols_without_data", {}),
            {s: m for row in missing for s, m in (row.m or {}).items()},
            error,
        )

    def outcomes(self, engine: sa.Engine) -> dict[str, Outcome]:
        """Outcome per case: the plain cases in one run, a case with its own clock or policy
        alone."""
        plain = [n for n, c in self.cases.items() if c.clock is None and c.policy == "fail"]
        together = self.run(engine, plain)
        out = dict.fromkeys(plain, together)
        for name, case in self.cases.items():
            if name not in plain:
                self.server.clock = case.clock
                try:
                    out[name] = self.run(engine, [name], empty_symbol_policy=case.policy)
                finally:
                    self.server.clock = None
        return out

    def check(self, name: str, outcome: Outcome) -> None:
        """Exactly the expected bars stored (no good bar lost or altered, nothing bad stored),
        exactly the expected rows quarantined with their reasons and the vendor's item, the
        expected symbol failing the run."""
        case, i = self.cases[name], list(self.cases).index(name)
        mine = {renamed(i, s) for s in [*SYMBOLS, *case.symbols, EXTRA]}
        stored = {row for row in outcome.stored if row[0] in mine}
        expected = {
            (renamed(i, s), d, float(item["c"]))
            for s in SYMBOLS
            for d, item in zip(DAYS, self.base[s], strict=True)
            if (s, d) not in case.lost
        } | {(renamed(i, s), d, c) for s, d, c in case.stored_instead}
        assert stored == expected
        held = [q for q in outcome.held if q.symbol in mine]
        assert sorted(q.expectation for q in held) == sorted(r for r, _ in case.quarantined)
        for rule, words in case.quarantined:
            assert any(q.expectation == rule and words in q.reason for q in held), (rule, held)
        assert all("vendor" in q.raw for q in held)  # the vendor's item as sent
        if case.missing is not None:
            missing = {s: m["first"] for s, m in outcome.missing.items() if s in mine}
            assert missing == {renamed(i, s): d for s, d in case.missing.items()}
        recorded = {s: r for s, r in outcome.recorded.items() if s in mine}
        if case.recorded is None:
            assert not recorded
        else:
            symbol, words = case.recorded
            assert re.search(words, recorded[renamed(i, symbol)]), recorded
        failed = {s: r for s, r in outcome.failed.items() if s in mine}
        if case.error is None:
            assert not failed
        else:
            symbol, words = case.error
            assert re.search(words, failed[renamed(i, symbol)]), failed
            assert renamed(i, symbol) in outcome.error  # the run failed, naming it
