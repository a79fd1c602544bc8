"""``fixtures``: an offline news source for the demo and the tests (clearly not real news).

Items are generated from ``pipelines/news/fixtures/templates.json`` (made-up positive,
negative and neutral headlines) as a pure function of (symbol, UTC day): each symbol gets 0-3
items a day at fixed minutes, so any window, split any way, yields the same items (a backfill
equals one run). Every item says it is a fixture: author ``mltrade fixture``, URL
``fixture://…``. The sentiment of fixture items is random: it carries no information about
returns, so an evaluation on it can show the plumbing works, not that news predicts prices.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from pipelines.news import Collected, RawItem
from pipelines.news.matcher import core_name, sample_company_names

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "templates.json"
AUTHOR = "mltrade fixture"


@cache
def _templates() -> dict:
    return json.loads(TEMPLATES.read_text())


def _draws(symbol: str, day: str) -> bytes:
    return hashlib.blake2b(f"{symbol}|{day}".encode(), digest_size=16).digest()


def items_of_day(symbol: str, day: datetime, name: str) -> list[RawItem]:
    """The fixture items of ``symbol`` on UTC day ``day`` (0-3, deterministic)."""
    t = _templates()
    key = day.strftime("%Y-%m-%d")
    draw = _draws(symbol, key)
    out = []
    for k in range(draw[0] % 4):
        tone = ("positive", "negative", "neutral")[draw[1 + 3 * k] % 3]
        choices = t[tone]
        headline = choices[draw[2 + 3 * k] % len(choices)].format(name=name, ticker=symbol)
        minute = (draw[3 + 3 * k] * 7 + k * 331) % 1440
        published = day + timedelta(minutes=minute)
        out.append(
            RawItem(
                source="fixtures",
                item_id=f"{symbol}-{key}-{k}",
                kind="article",
                published=published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                headline=headline,
                body=t["body"].format(ticker=symbol),
                url=f"fixture://{symbol}/{key}/{k}",
                author=AUTHOR,
                vendor_symbols=(symbol,),
            )
        )
    return out


class FixtureSource:
    """Deterministic made-up items for the universe (``NEWS_SOURCES=fixtures``)."""

    name = "fixtures"

    def collect(self, start: datetime, end: datetime, symbols: list[str]) -> Collected:
        names = sample_company_names()
        out = Collected(requests=1)
        day = datetime.combine(start.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
        while day < end:
            for symbol in symbols:
                name = core_name(names.get(symbol, symbol))
                out.items += [
                    i
                    for i in items_of_day(symbol, day, name)
                    if start <= datetime.fromisoformat(str(i.published)) < end
                ]
            day += timedelta(days=1)
        return out
