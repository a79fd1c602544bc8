from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import ValidationGateError
from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource

START, END = date(2010, 3, 1), date(2010, 3, 31)
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM"]


class EditedSample(SampleSource):
    """The real sample with some rows edited: a source with known bad data."""

    def __init__(self, edit) -> None:
        self._edit = edit

    def fetch_daily_bars(self, start, end, symbols):
        return self._edit(super().fetch_daily_bars(start, end, symbols).copy())


def _table(engine: sa.Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {name} ORDER BY 1, 2"), conn)


def _break_two_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[0, "high"] = frame.loc[0, "low"] - 1
    frame.loc[5, "close"] = float("nan")
    return frame


def test_loads_quarantines_and_reruns_as_noop(warehouse: sa.Engine) -> None:
    source = EditedSample(_break_two_rows)
    first = ingest(warehouse, source, START, END, SYMBOLS, "run-1", 0.05)
    assert first.rows_fetched == 4 * 23
    assert (first.rows_loaded, first.rows_quarantined) == (90, 2)
    bars, quarantine = _table(warehouse, "bars"), _table(warehouse, "quarantine")
    assert len(bars) == 90 and set(quarantine["expectation"]) == {"high_ge_low", "close_not_null"}
    missing_close = quarantine.loc[quarantine["expectation"] == "close_not_null", "raw"].iloc[0]
    assert missing_close["close"] == "nan", "raw values are kept as received"

    again = ingest(warehouse, source, START, END, SYMBOLS, "run-2", 0.05)
    assert (again.rows_loaded, again.rows_quarantined) == (0, 0)
    pd.testing.assert_frame_equal(_table(warehouse, "bars"), bars)  # ingested_at included
    pd.testing.assert_frame_equal(_table(warehouse, "quarantine"), quarantine)


def test_a_corrected_bar_is_updated(warehouse: sa.Engine) -> None:
    ingest(warehouse, SampleSource(), START, END, ["IBM"], "run-1", 0.05)

    def restate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[3, "volume"] += 100
        return frame

    result = ingest(warehouse, EditedSample(restate), START, END, ["IBM"], "run-2", 0.05)
    assert result.rows_loaded == 1


def test_gate_failure_loads_nothing_and_says_why(warehouse: sa.Engine) -> None:
    with pytest.raises(ValidationGateError, match="above MAX_QUARANTINE_FRACTION"):
        ingest(warehouse, EditedSample(_break_two_rows), START, END, ["IBM"], "run-x", 0.05)
    assert _table(warehouse, "bars").empty
    assert len(_table(warehouse, "quarantine")) == 2
    with warehouse.connect() as conn:
        run = conn.execute(sa.text("SELECT status, error FROM pipeline_runs")).one()
        gate = conn.execute(sa.text("SELECT success FROM validation_runs")).scalar_one()
    assert run.status == "failed" and "ValidationGateError" in run.error
    assert gate is False
