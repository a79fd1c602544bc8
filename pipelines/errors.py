"""The project's own exceptions. Each message says what went wrong and what to do about it."""

from __future__ import annotations


class MltradeError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class ConfigurationError(MltradeError):
    """A setting is missing, malformed or unsafe (e.g. live trading without confirmation)."""


class WarehouseError(MltradeError):
    """The warehouse is unreachable or its schema is not what the code expects."""


class MigrationError(WarehouseError):
    """A migration file changed after it was applied, or failed to apply."""


class DataSourceError(MltradeError):
    """A market-data vendor failed or returned something unusable."""


class ValidationGateError(MltradeError):
    """Too many rows failed validation: downstream stages must not run on this data."""


class ModelError(MltradeError):
    """Training, registry or inference failed (e.g. no champion, feature-set mismatch)."""


class RegistryUnavailableError(ModelError):
    """MLflow did not answer (down, 5xx, unreachable): never read as "no such model"."""


class OptimizationError(MltradeError):
    """The portfolio optimizer did not reach an optimal solution; no orders may be produced."""


class RiskLimitBreached(MltradeError):
    """A pre-trade risk check failed; the plan is blocked."""


class KillSwitchEngaged(RiskLimitBreached):
    """The persisted kill switch is on; no order may be sent."""


class BrokerError(MltradeError):
    """The broker rejected a request or could not be reached."""


class ReconciliationError(MltradeError):
    """The ledger and the broker disagree; trading is blocked until resolved."""


class TradingBlocked(RiskLimitBreached):
    """A money-path guard refused: no plan is made and no order is sent (see
    :mod:`pipelines.execution.guards`)."""


class NotATradingSession(TradingBlocked):
    """The requested date is not an NYSE session (a weekend or a holiday)."""


class StaleMarketData(TradingBlocked):
    """The bars a rebalance trades on (the previous session's) are not in the warehouse."""


class LossLimitBreached(TradingBlocked):
    """A circuit breaker: realized daily loss or drawdown is past its limit (see
    :mod:`pipelines.risk.breakers`)."""


class PlanConflict(MltradeError):
    """Another run holds or already moved this plan (a concurrent rebalance or submission);
    this run changed nothing."""
