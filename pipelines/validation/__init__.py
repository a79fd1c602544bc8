"""The Great Expectations gate between sources and the warehouse (docs/validation.md)."""

from pipelines.validation.bars_suite import Limits, suite_id
from pipelines.validation.gate import (
    ValidationResult,
    data_docs_index,
    summary_line,
    validate_bars,
    validate_minute_bars,
)
from pipelines.validation.prepare import BarSchemaError, missing_sessions

__all__ = [
    "BarSchemaError",
    "Limits",
    "ValidationResult",
    "data_docs_index",
    "missing_sessions",
    "suite_id",
    "summary_line",
    "validate_bars",
    "validate_minute_bars",
]
