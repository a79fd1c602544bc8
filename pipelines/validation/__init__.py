"""The Great Expectations gate between sources and the warehouse."""

from pipelines.validation.gate import ValidationResult, validate_bars

__all__ = ["ValidationResult", "validate_bars"]
