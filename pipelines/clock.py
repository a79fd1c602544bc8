"""The Clock port: the only "now" the money path and the backtest may read.

A live task gets a :class:`FixedClock` at its data interval's end; the backtest driver owns a
:class:`SimClock` and advances it session by session (it refuses to go backwards, so an
out-of-order step is an error, not a silent look-ahead). Times are timezone-aware UTC;
``session_date`` is the NYSE session the clock is in (or about to open).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
PRE_MARKET = time(4, 0)  # the rebalance runs before the open (see the premarket DAG)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    def session_date(self) -> date:
        """The New York date of :meth:`now` (the session being traded)."""
        ...


def premarket(session: date) -> datetime:
    """``session``'s pre-market instant (04:00 New York) in UTC."""
    return datetime.combine(session, PRE_MARKET, NEW_YORK).astimezone(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at one instant: a task's data interval end, or a test's chosen time."""

    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"FixedClock needs a timezone-aware time, got {self.at!r}")

    @classmethod
    def premarket(cls, session: date) -> FixedClock:
        return cls(premarket(session))

    def now(self) -> datetime:
        return self.at.astimezone(UTC)

    def session_date(self) -> date:
        return self.at.astimezone(NEW_YORK).date()


@dataclass
class SimClock:
    """The backtest's clock: the driver moves it forward, never back."""

    at: datetime
    history: list[datetime] = field(default_factory=list, repr=False)

    def now(self) -> datetime:
        return self.at.astimezone(UTC)

    def session_date(self) -> date:
        return self.at.astimezone(NEW_YORK).date()

    def advance_to(self, at: datetime) -> None:
        """Move to ``at``; raises ValueError if that is earlier than now."""
        if at < self.at:
            raise ValueError(f"the simulated clock cannot go back from {self.at} to {at}")
        self.history.append(self.at)
        self.at = at
