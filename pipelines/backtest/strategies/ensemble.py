"""Ensemble: a weighted average of its members' *ranked* expected returns, times ``scale``.

Members' outputs live on different scales (a model's predicted returns are tiny next to a
rule's ranks), so each is ranked onto [-0.5, 0.5] first; a symbol a member has no view on
counts as 0 (the median) for that member. Weights are normalized to sum to one.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from pipelines.backtest.data import MarketData
from pipelines.backtest.strategies.base import DEFAULT_SCALE, Strategy, TrainingSet, rank


class Ensemble(Strategy):
    name = "ensemble"

    def __init__(
        self,
        members: list[Strategy],
        weights: list[float] | None = None,
        scale: float = DEFAULT_SCALE,
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        raw = weights or [1.0] * len(members)
        if len(raw) != len(members) or sum(raw) <= 0 or min(raw) < 0:
            raise ValueError("ensemble weights: one non-negative weight per member, sum > 0")
        self.members = members
        self.weights = [w / sum(raw) for w in raw]
        self.scale = scale
        self.learns = any(m.learns for m in members)

    def fit(self, train: TrainingSet) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for member in self.members:
            if member.learns:
                for key, value in member.fit(train).items():
                    metrics[f"{member.name}.{key}"] = value
        return metrics

    def expected_returns(self, data: MarketData, as_of: date) -> pd.Series:
        ranked = [rank(m.expected_returns(data, as_of)) for m in self.members]
        symbols = sorted(set().union(*(r.index for r in ranked)))
        total = sum(
            w * r.reindex(symbols, fill_value=0.0)
            for w, r in zip(self.weights, ranked, strict=True)
        )
        return self.scale * pd.Series(total, index=symbols, dtype=float)

    def factor_model(self) -> Any:
        """The first member's factor structure (the IPCA member's in the default ensemble)."""
        return next((f for f in (m.factor_model() for m in self.members) if f is not None), None)

    def params(self) -> dict[str, object]:
        return {
            "name": self.name,
            "members": [m.params() for m in self.members],
            "weights": self.weights,
            "scale": self.scale,
        }
