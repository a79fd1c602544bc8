"""Intraday risk: the book marked to market every minute, limits enforced as they break.

Equity (USD) = initial capital - cost of every fill so far (buys positive, commissions added)
+ the shares held valued at the last minute close of each symbol. The daily loss is
``1 - equity / equity at the previous session's close`` and the drawdown ``1 - equity /
peak equity`` (the peak of the session-close curve and of every intraday mark), both positive
fractions. When either reaches its limit (``DAILY_LOSS_LIMIT``, ``MAX_DRAWDOWN``, the same
limits the pre-trade gate applies at the close) the kill switch goes on with the reason
stored in ``controls``, an ERROR log line is written and the trip counter that the Prometheus
alert ``IntradayRiskKillSwitch`` watches is incremented. It never turns the switch off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pipelines import calendar
from pipelines.controls import kill_switch_status, set_kill_switch
from pipelines.monitoring.stream_metrics import StreamMetrics
from pipelines.risk.limits import RiskLimits
from pipelines.risk.pnl import equity_curve
from pipelines.warehouse import orders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mark:
    """One minute's mark: equity (USD) and the limits' measures (fractions, losses > 0)."""

    at: datetime
    equity: float
    daily_loss: float
    drawdown: float
    breach: str | None


class IntradayRisk:
    """Marks the book with the last prices it is given; trips the kill switch on a breach."""

    def __init__(
        self,
        engine: sa.Engine,
        limits: RiskLimits,
        initial_capital: float,
        metrics: StreamMetrics,
    ) -> None:
        """``initial_capital``: USD, the equity before the first fill."""
        self.engine, self.limits, self.metrics = engine, limits, metrics
        self.initial_capital = initial_capital
        self.prices: dict[str, float] = {}
        self._peak: float | None = None
        self._session: object = None
        self._previous_close_equity = initial_capital

    def observe(self, closes: dict[str, float]) -> None:
        """Remember the latest minute closes (USD) of some symbols."""
        self.prices.update(closes)

    def mark(self, at: datetime) -> Mark:
        """Mark the book at minute ``at`` (UTC) and enforce the limits."""
        session = calendar.exchange_date(at)
        if session != self._session:
            self._start_session(session)
        equity = self._equity()
        self._peak = max(self._peak or equity, equity)
        daily_loss = 1 - equity / self._previous_close_equity
        drawdown = 1 - equity / self._peak
        breach = None
        if daily_loss >= self.limits.daily_loss_limit:
            breach = (
                f"intraday daily loss {daily_loss:.2%} at {at:%Y-%m-%d %H:%M}Z reached "
                f"DAILY_LOSS_LIMIT {self.limits.daily_loss_limit:.2%}"
            )
        elif drawdown >= self.limits.max_drawdown:
            breach = (
                f"intraday drawdown {drawdown:.2%} at {at:%Y-%m-%d %H:%M}Z reached "
                f"MAX_DRAWDOWN {self.limits.max_drawdown:.2%}"
            )
        self.metrics.equity.set(equity)
        self.metrics.daily_loss.set(daily_loss)
        self.metrics.drawdown.set(drawdown)
        if breach is not None:
            self._trip(breach)
        return Mark(at, equity, daily_loss, drawdown, breach)

    def _start_session(self, session: object) -> None:
        previous = calendar.previous_session(session)  # type: ignore[arg-type]
        curve = equity_curve(self.engine, self.initial_capital, previous)
        self._previous_close_equity = float(curve.iloc[-1]) if len(curve) else self.initial_capital
        self._peak = max([self.initial_capital, *curve.tolist()])
        self._session = session

    def _equity(self) -> float:
        book = orders.holdings_at_cost(self.engine)
        value = 0.0
        for row in book.itertuples(index=False):
            price = self.prices.get(row.symbol)
            if price is None and row.shares:
                price = row.cost / row.shares  # never marked yet: at cost
            value += row.shares * (price or 0.0)
        return self.initial_capital - float(book["cost"].sum()) + value

    def _trip(self, reason: str) -> None:
        enabled, _, _ = kill_switch_status(self.engine)
        if enabled:
            return
        set_kill_switch(self.engine, True, reason)
        self.metrics.kill_switch_trips.inc()
        log.error("event=kill_switch_on source=intraday_risk reason=%r", reason)
