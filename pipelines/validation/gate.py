"""The ingest gate: run the GX suite on a bar frame and split it into valid and rejected rows.

A row is rejected by the first rule it fails (in :func:`bars_suite.rules` order); the rejected
frame keeps the raw values plus ``expectation`` and ``reason``. Nothing is dropped silently:
``len(valid) + len(rejected) == len(frame)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from pipelines.errors import ValidationGateError
from pipelines.validation.bars_suite import SUITE_NAME, SUITE_VERSION, Rule, rules

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def failure_fraction(self) -> float:
        total = len(self.valid) + len(self.rejected)
        return len(self.rejected) / total if total else 0.0


def _run_suite(frame: pd.DataFrame, suite_rules: list[Rule]) -> dict[str, list[int]]:
    """Rule name -> positional indexes of the rows that fail it, computed by GX."""
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas("bars")
        .add_dataframe_asset("bars_frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    suite = gx.ExpectationSuite(name=f"{SUITE_NAME}_v{SUITE_VERSION}")
    for rule in suite_rules:
        rule.expectation.meta = {"rule": rule.name}  # GX reorders results; this names them
        suite.add_expectation(rule.expectation)
    suite = context.suites.add(suite)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    failing: dict[str, list[int]] = {}
    for outcome in result.results:
        config = outcome.expectation_config
        if config is None or "rule" not in (config.meta or {}):  # fail closed
            raise ValidationGateError("GX returned a result it cannot attribute to a rule")
        failing[config.meta["rule"]] = [
            int(i) for i in outcome.result.get("unexpected_index_list") or []
        ]
    return failing


def validate_bars(frame: pd.DataFrame) -> ValidationResult:
    """Split a canonical bar frame into rows to load and rows to quarantine."""
    frame = frame.reset_index(drop=True)
    suite_rules = rules()
    failing = _run_suite(frame, suite_rules) if len(frame) else {}
    expectation = pd.Series(pd.NA, index=frame.index, dtype="object")
    for rule in suite_rules:  # first failed rule wins
        rows = [i for i in failing.get(rule.name, []) if pd.isna(expectation.iat[i])]
        expectation.iloc[rows] = rule.name
    bad = expectation.notna()
    rejected = frame.loc[bad].copy()
    by_name = {rule.name: rule for rule in suite_rules}
    rejected["expectation"] = expectation[bad]
    rejected["reason"] = [
        by_name[name].reason(row)
        for name, (_, row) in zip(rejected["expectation"], rejected.iterrows(), strict=True)
    ]
    summary = {
        "suite": f"{SUITE_NAME}_v{SUITE_VERSION}",
        "rows": len(frame),
        "rejected": int(bad.sum()),
        "failed_rules": {name: len(ix) for name, ix in failing.items() if ix},
    }
    log.info("validation suite=%s rows=%d rejected=%d", summary["suite"], len(frame), bad.sum())
    return ValidationResult(frame.loc[~bad].reset_index(drop=True), rejected, summary)
