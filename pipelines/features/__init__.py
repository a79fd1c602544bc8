"""The feature store: point-in-time characteristics, versioned as a feature set."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pipelines.features import characteristics


@dataclass(frozen=True)
class FeatureSet:
    """A named, versioned definition. ``key`` changes whenever the definition does."""

    name: str
    version: str
    definition: dict

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.definition, sort_keys=True).encode()).hexdigest()

    @property
    def key(self) -> str:
        """The ``feature_set_version`` stored with features and models: version + hash."""
        return f"{self.version}.{self.digest[:10]}"


FEATURE_SET = FeatureSet(
    name="price",
    version="1",
    definition={
        "windows": characteristics.WINDOWS,
        "min_history": characteristics.MIN_HISTORY,
        "ranking": "(rank-1)/(n-1)-0.5 per date, average ties, missing=0",
    },
)
