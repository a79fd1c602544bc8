"""Events on the bus: how a stream message is written to and read back from a bus entry.

An entry has three fields: ``k`` the kind (``b`` minute bar, ``u`` updated bar, ``t`` trade,
``q`` quote, ``tu`` trade update, ``n`` news article), ``d`` the payload (JSON) and ``rx``
when the client received it (ns since the epoch, for the end-to-end latency). Bars are
Alpaca's: ``t`` the minute's *start* (ns since the epoch, UTC), ``o h l c`` USD, ``v``
shares; the warehouse's ``ts`` is the minute's end (``t`` + 1 minute), as in batch ingest
(pipelines/sources/alpaca.py).
A news payload is Alpaca's article as the stream sent it (``id``, ``headline``, ``summary``,
``content``, ``author``, ``url``, ``symbols``, ``source``), ``created_at`` and ``updated_at``
as RFC 3339 text (or as sent when they are not timestamps: the news rules judge them).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from pipelines.streaming.bus import Message

BAR_KINDS = frozenset({"b", "u"})
TICK_KINDS = frozenset({"t", "q"})
TRADE_UPDATE = "tu"
NEWS = "n"
NEWS_FIELDS = ("id", "headline", "summary", "content", "author", "url", "symbols", "source")
MINUTE_NS = 60_000_000_000
_OHLCV = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


@dataclass(frozen=True)
class Streams:
    """The bus streams of one deployment (``BUS_PREFIX``)."""

    prefix: str

    @property
    def bars(self) -> str:
        return f"{self.prefix}:bars"

    @property
    def ticks(self) -> str:
        return f"{self.prefix}:ticks"

    @property
    def trade_updates(self) -> str:
        return f"{self.prefix}:trade_updates"

    @property
    def news(self) -> str:
        return f"{self.prefix}:news"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.bars, self.ticks, self.trade_updates, self.news)

    @property
    def group(self) -> str:
        return f"{self.prefix}:processor"


def _ns(stamp: Any) -> int:
    """ns since the epoch of a msgpack Timestamp, datetime or RFC 3339 text."""
    if hasattr(stamp, "to_unix_nano"):
        return int(stamp.to_unix_nano())
    return int(pd.Timestamp(stamp).value)


def market_entry(msg: dict[str, Any], received_ns: int | None = None) -> dict[str, str]:
    """A bus entry for one raw market-data message (bar, updated bar, trade or quote)."""
    kind = str(msg["T"])
    if kind in BAR_KINDS:
        payload: dict[str, Any] = {
            "S": msg["S"],
            "t": _ns(msg["t"]),
            **{k: msg.get(k) for k in ("o", "h", "l", "c", "v")},
        }
    elif kind == "t":
        payload = {"S": msg["S"], "t": _ns(msg["t"]), "p": msg.get("p"), "s": msg.get("s")}
    else:
        payload = {
            "S": msg["S"],
            "t": _ns(msg["t"]),
            **{k: msg.get(k) for k in ("bp", "bs", "ap", "as")},
        }
    return {"k": kind, "d": json.dumps(payload), "rx": str(received_ns or time.time_ns())}


def trade_update_entry(update: dict[str, Any], received_ns: int | None = None) -> dict[str, str]:
    """A bus entry for one raw ``trade_updates`` message's ``data`` (event + order)."""
    return {"k": TRADE_UPDATE, "d": json.dumps(update), "rx": str(received_ns or time.time_ns())}


def news_entry(msg: dict[str, Any], received_ns: int | None = None) -> dict[str, str]:
    """A bus entry for one raw ``T`` = ``n`` news message."""
    payload: dict[str, Any] = {k: msg.get(k) for k in NEWS_FIELDS}
    for name in ("created_at", "updated_at"):
        payload[name] = _rfc3339(msg.get(name))
    return {
        "k": NEWS,
        "d": json.dumps(payload, default=str),
        "rx": str(received_ns or time.time_ns()),
    }


def _rfc3339(stamp: Any) -> Any:
    """RFC 3339 UTC text of a msgpack Timestamp or aware datetime; anything else as sent."""
    if hasattr(stamp, "to_unix_nano"):
        stamp = pd.Timestamp(stamp.to_unix_nano(), unit="ns", tz="UTC")
    if isinstance(stamp, datetime) and stamp.tzinfo is not None:
        return stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return stamp


def payload_ns(entry: dict[str, str]) -> int:
    """The ``t`` (ns) of an entry made by :func:`market_entry`."""
    return int(json.loads(entry["d"])["t"])


def kind(message: Message) -> str:
    return field(message, "k").decode()


def field(message: Message, name: str) -> bytes:
    fields: Any = message.fields
    value = fields.get(name.encode())  # what Redis returns: bytes keys
    if value is None:
        value = fields.get(name)
    return value if isinstance(value, bytes) else str(value).encode()


def payload(message: Message) -> dict[str, Any]:
    return dict(json.loads(field(message, "d")))


def received_ns(message: Message) -> int:
    return int(field(message, "rx"))


def bars_frame(messages: list[Message]) -> pd.DataFrame:
    """Bar entries as a canonical minute-bar frame (symbol, ts = minute end UTC, session_date,
    OHLCV); for one (symbol, minute) the last entry in bus order wins (an updated bar
    replaces the bar it corrects). The bus id of each row's entry is in ``bus_id``."""
    # One JSON array decoded in one call: per-entry json.loads was a tenth of the processor.
    payloads = json.loads(b"[" + b",".join(field(m, "d") for m in messages) + b"]")
    frame = pd.DataFrame(
        {
            "symbol": [p["S"] for p in payloads],
            "ts": [p["t"] + MINUTE_NS for p in payloads],
            **{c: [p[k] for p in payloads] for c, k in _OHLCV.items()},
            "bus_id": [m.id for m in messages],
        }
    )
    frame = frame.drop_duplicates(["symbol", "ts"], keep="last").reset_index(drop=True)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ns", utc=True)
    frame["session_date"] = frame["ts"].dt.tz_convert("America/New_York").dt.date
    return frame  # values as sent: the validation names a value of the wrong type
