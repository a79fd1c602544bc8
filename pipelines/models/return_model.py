"""A registered return model as the project uses it, and the port that finds it.

:class:`ReturnModel` is what leaves a registry: a version's reference, the feature set it
was trained on, ``predict`` (expected next-session simple return, a fraction: 0.01 is 1%)
and, for IPCA, the fitted factor structure the planner's risk model can use. No registry's
own objects (an MLflow pyfunc, a client) are part of it.

:class:`Registry` is what domain code needs of a registry: alias lookup and moves, and
``load``. :class:`pipelines.models.registry.MLflowRegistry` is the real one;
:class:`InMemoryRegistry` holds models in the process (the backtest's ports, whose strategy
holds its own fitted model, never reach MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pipelines.errors import ModelError
from pipelines.models import ModelRef, check_version_format

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.models.ipca_returns import IPCAReturnModel


@dataclass(frozen=True)
class ReturnModel:
    """One model version, ready to predict.

    ``columns``: the characteristics it was fitted on, in the fitted order (the features
    frame may hold more; they are ignored). ``estimator``: the fitted object of its
    ``MODEL_KIND`` (an ``XGBRegressor``, a ``RandomForestRegressor`` or an
    :class:`~pipelines.models.ipca_returns.IPCAReturnModel`), anything whose
    ``predict(frame)`` gives one number a row.
    """

    ref: ModelRef
    feature_set_version: str
    columns: tuple[str, ...]
    estimator: Any = field(repr=False)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Expected next-session simple return of each row of ``features`` (indexed
        ``(session_date, symbol)``), as a Series on the same index."""
        import pandas as pd

        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ModelError(
                f"{self.ref.name} v{self.ref.version} needs features {missing} the frame lacks: "
                "rebuild features (`mltrade features`) or retrain (`mltrade train`)"
            )
        values = np.asarray(self.estimator.predict(features[list(self.columns)]), dtype=float)
        return pd.Series(values, index=features.index, name="expected_return")

    @property
    def factor_model(self) -> IPCAReturnModel | None:
        """The fitted IPCA (Γ_β, factors, columns) for the planner's risk model; None for
        models without a factor structure (trees)."""
        from pipelines.models.ipca_returns import IPCAReturnModel

        return self.estimator if isinstance(self.estimator, IPCAReturnModel) else None


class Registry(Protocol):
    """Model versions by alias (``champion``, ``challenger``, ``previous_champion``).

    An unreachable registry raises :class:`~pipelines.errors.RegistryUnavailableError`;
    only a definite "no such alias or model" is ``None``.
    """

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``name@alias`` points to, or None when it is not set."""
        ...

    def require_version(self, name: str, version: str) -> None:
        """:class:`~pipelines.errors.ModelError` unless ``version`` of ``name`` exists."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at an existing ``version`` (checked first)."""
        ...

    def remove_alias(self, name: str, alias: str) -> None:
        """Delete ``alias`` (nothing happens when it is not set)."""
        ...

    def load(self, ref: ModelRef) -> ReturnModel:
        """The registered version ``ref``."""
        ...


class InMemoryRegistry:
    """A :class:`Registry` in the process: versions added with :meth:`add`, numbered 1, 2…"""

    def __init__(self) -> None:
        self._models: dict[ModelRef, ReturnModel] = {}
        self._aliases: dict[tuple[str, str], str] = {}

    def add(self, name: str, feature_set_version: str, columns: tuple[str, ...],
            estimator: Any) -> ReturnModel:  # fmt: skip
        """Register ``estimator`` as the next version of ``name``."""
        version = str(1 + sum(ref.name == name for ref in self._models))
        model = ReturnModel(ModelRef(name, version), feature_set_version, columns, estimator)
        self._models[model.ref] = model
        return model

    def alias_version(self, name: str, alias: str) -> str | None:
        return self._aliases.get((name, alias))

    def require_version(self, name: str, version: str) -> None:
        if ModelRef(name, check_version_format(version)) not in self._models:
            raise ModelError(f"{name} has no version {version}")

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.require_version(name, version)
        self._aliases[(name, alias)] = str(version)

    def remove_alias(self, name: str, alias: str) -> None:
        self._aliases.pop((name, alias), None)

    def load(self, ref: ModelRef) -> ReturnModel:
        self.require_version(ref.name, ref.version)
        return self._models[ref]
