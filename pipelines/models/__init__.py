"""Return models, their training and inference, and the MLflow registry."""

from __future__ import annotations

from dataclasses import dataclass

CHALLENGER, CHAMPION, PREVIOUS_CHAMPION = "challenger", "champion", "previous_champion"


@dataclass(frozen=True)
class ModelRef:
    """A registered model version."""

    name: str
    version: str


def check_version_format(version: str) -> str:
    """``version`` if it is a registry version number (a positive whole number), else
    :class:`~pipelines.errors.ModelError`. Needs no MLflow: bad input fails before any call."""
    from pipelines.errors import ModelError

    if not str(version).isdigit() or int(version) < 1:
        raise ModelError(f"model version must be a positive whole number like 3, got {version!r}")
    return str(version)
