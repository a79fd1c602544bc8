"""Trading-cost models: commission, spread, slippage, market impact, borrow and margin.

Conventions: prices and amounts in USD; rates in basis points of the reference price (bps) or
per year (borrow, margin: charged per session as ``rate / 252``); participation is an order's
shares over the average daily volume in shares. A buy fills *above* its reference price and a
sell below it by ``half spread + slippage + impact``, where impact is proportional to
participation: ``impact_coefficient × qty / ADV`` (a fraction of price; 0.1 means 1%
participation costs 10 bps). The simulated broker and the backtest both price fills here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import Settings

SESSIONS_PER_YEAR = 252


@dataclass(frozen=True)
class CostModel:
    commission_per_share: float = 0.0  # USD per share
    spread_bps: float = 0.0  # full quoted spread; each fill pays half
    slippage_bps: float = 5.0
    impact_coefficient: float = 0.1  # price fraction per unit of participation
    borrow_rate: float = 0.0  # annual, on the notional of short positions
    margin_rate: float = 0.0  # annual, on negative cash

    @classmethod
    def from_settings(cls, settings: Settings) -> CostModel:
        return cls(
            commission_per_share=settings.commission_per_share,
            spread_bps=settings.spread_bps,
            slippage_bps=settings.slippage_bps,
            impact_coefficient=settings.impact_coefficient,
            borrow_rate=settings.borrow_rate,
            margin_rate=settings.margin_rate,
        )

    def fixed_fraction(self) -> float:
        """Half spread plus slippage, as a fraction of the reference price."""
        return (self.spread_bps / 2 + self.slippage_bps) / 10_000

    def impact_fraction(self, qty: float, adv_shares: float) -> float:
        """Market impact of ``qty`` shares against ``adv_shares`` of daily volume."""
        if adv_shares <= 0:
            return 0.0
        return self.impact_coefficient * abs(qty) / adv_shares

    def fill_price(self, side: str, reference: float, qty: float, adv_shares: float) -> float:
        """The price a ``side`` order of ``qty`` shares gets against ``reference`` (USD)."""
        adverse = self.fixed_fraction() + self.impact_fraction(qty, adv_shares)
        return reference * (1 + adverse if side == "buy" else 1 - adverse)

    def commission(self, qty: float) -> float:
        return abs(qty) * self.commission_per_share

    def carry(self, short_notional: float, cash: float, sessions: int = 1) -> float:
        """Borrow cost of shorts plus margin interest on negative cash over ``sessions`` (USD)."""
        borrow = abs(short_notional) * self.borrow_rate
        margin = max(-cash, 0.0) * self.margin_rate
        return (borrow + margin) * sessions / SESSIONS_PER_YEAR
