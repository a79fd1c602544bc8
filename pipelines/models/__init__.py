"""Return models, their training and inference, and the MLflow registry."""

from __future__ import annotations

from dataclasses import dataclass

CHALLENGER, CHAMPION, PREVIOUS_CHAMPION = "challenger", "champion", "previous_champion"


@dataclass(frozen=True)
class ModelRef:
    """A registered model version."""

    name: str
    version: str
