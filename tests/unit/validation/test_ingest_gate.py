"""The gate inside ingest (real PostgreSQL): suite version, summary, Data Docs, history."""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import ValidationGateError
from pipelines.ingest import ingest
from pipelines.sources.sample import SampleSource
from pipelines.validation import Limits, suite_id, validate_bars

START, END = date(2010, 3, 1), date(2010, 3, 31)
LIMITS = Limits(stale_sessions=3, max_close_jump=0.5)


class EditedSample(SampleSource):
    """The real sample with some rows edited: a source with known bad data."""

    def __init__(self, edit) -> None:
        self._edit = edit

    def fetch_daily_bars(self, start, end, symbols):
        return self._edit(super().fetch_daily_bars(start, end, symbols).copy())


def _times_100(day: date):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame["session_date"] == day
        frame.loc[rows, ["open", "high", "low", "close"]] *= 100
        return frame

    return edit


def _rows(engine: sa.Engine, sql: str) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


def test_run_records_suite_summary_and_builds_data_docs(
    warehouse: sa.Engine, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines")
    source = EditedSample(_times_100(date(2010, 3, 10)))
    result = ingest(
        warehouse, source, START, END, ["IBM", "XOM"], "run-dd", 0.05, data_docs_root=tmp_path
    )
    assert (result.rows_fetched, result.rows_quarantined) == (46, 2)

    (suite, summary), = _rows(warehouse, "SELECT suite, summary FROM validation_runs")
    assert suite == suite_id() == "bars_v3"
    assert summary["failed"]["no_unexplained_jump"] == 2
    assert summary["missing_sessions"] == {"total": 0, "by_symbol": {}}
    quarantined = _rows(warehouse, "SELECT symbol, expectation, raw FROM quarantine ORDER BY 1")
    assert [(q.symbol, q.expectation) for q in quarantined] == [
        ("IBM", "no_unexplained_jump"), ("XOM", "no_unexplained_jump")]
    assert quarantined[0].raw["session_date"] == "2010-03-10"

    index = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert result.data_docs == str(index) and index.is_file()
    assert "bars_v3" in index.read_text()
    pages = list((index.parent / "validations" / "bars_v3" / "run-dd").rglob("*.html"))
    assert len(pages) == 1 and "[no_unexplained_jump] close within" in pages[0].read_text()

    lines = [r.getMessage() for r in caplog.records]
    assert any(
        "event=validation run_id=run-dd suite=bars_v3 rows=46 valid=44 rejected=2" in line
        and "no_unexplained_jump:2" in line and "missing_sessions=0" in line
        for line in lines
    )
    assert any("ingest run_id=run-dd" in line and f"data_docs={index}" in line for line in lines)


def test_a_split_passed_in_explains_the_jump(warehouse: sa.Engine) -> None:
    def split(frame: pd.DataFrame) -> pd.DataFrame:
        later = frame["session_date"] >= date(2010, 3, 10)
        frame.loc[later, ["open", "high", "low", "close"]] /= 3
        return frame

    actions = pd.DataFrame(
        {"symbol": ["IBM"], "ex_date": [date(2010, 3, 10)], "kind": ["split"], "value": [3.0]}
    )
    source = EditedSample(split)
    result = ingest(
        warehouse, source, START, END, ["IBM"], "run-s", 0.05, corporate_actions=actions
    )
    assert result.rows_quarantined == 0 and result.rows_loaded == 23
    with pytest.raises(ValidationGateError, match="MAX_QUARANTINE_FRACTION"):
        ingest(warehouse, source, START, END, ["XOM"], "run-t", 0.01)  # XOM: no split on record


def test_a_one_session_batch_is_checked_against_loaded_history(warehouse: sa.Engine) -> None:
    ingest(warehouse, SampleSource(), START, date(2010, 3, 15), ["IBM"], "run-1", 0.05)
    day = date(2010, 3, 16)
    with pytest.raises(ValidationGateError, match="1 of 1 bars"):
        ingest(warehouse, EditedSample(_times_100(day)), day, day, ["IBM"], "run-2", 0.05)
    (expectation,), = _rows(warehouse, "SELECT expectation FROM quarantine")
    assert expectation == "no_unexplained_jump"


def test_stale_runs_span_the_batch_boundary() -> None:
    bars = SampleSource().fetch_daily_bars(date(2010, 3, 1), date(2010, 3, 5), ["IBM"])
    frozen = bars.copy()
    frozen.loc[[3, 4], ["open", "high", "low", "close", "volume"]] = (
        frozen.loc[[2, 2], ["open", "high", "low", "close", "volume"]].to_numpy()
    )
    history, batch = frozen.iloc[:3], frozen.iloc[3:].reset_index(drop=True)
    alone = validate_bars(batch, limits=LIMITS)
    assert alone.rejected.empty  # two identical bars alone are not a stale run of three
    result = validate_bars(batch, history=history, limits=LIMITS)
    assert list(result.rejected["expectation"]) == ["not_stale", "not_stale"]
    assert result.valid.empty
