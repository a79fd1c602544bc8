from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import ValidationGateError, WarehouseError
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


# --- batches, crashes and backfills (issue #3) -------------------------------------------

_BARS_MD5 = (
    "SELECT count(*), md5(coalesce(string_agg(concat_ws(',', symbol, ts, session_date, open, "
    "high, low, close, volume, source), '|' ORDER BY symbol, ts), '')) FROM bars"
)


def _fingerprint(engine: sa.Engine) -> tuple[int, str]:
    """Row count and md5 of every bar (all columns but ingested_at), in key order."""
    with engine.connect() as conn:
        count, digest = conn.execute(sa.text(_BARS_MD5)).one()
    return count, digest


def test_symbols_are_loaded_in_batches(warehouse: sa.Engine) -> None:
    seen: list[tuple[int, int]] = []
    summary = ingest(
        warehouse,
        SampleSource(),
        START,
        END,
        SYMBOLS,
        "run-b",
        0.05,
        batch_symbols=3,
        on_batch=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 2), (2, 2)]
    assert summary.rows_fetched == summary.rows_loaded == 4 * 23
    with warehouse.connect() as conn:
        batches = conn.execute(sa.text("SELECT count(*) FROM validation_runs")).scalar_one()
    assert batches == 2, "one validation record per batch"


def test_a_crash_mid_copy_leaves_no_partial_batch(warehouse: sa.Engine) -> None:
    from pipelines.validation import validate_bars
    from pipelines.warehouse.bars import upsert_bars

    ingest(warehouse, SampleSource(), START, END, ["IBM"], "run-0", 0.05)
    before = _fingerprint(warehouse)

    # 2,000 good rows, then one that violates NOT NULL: COPY fails after streaming the good
    # ones. IBM's March is stored, so this batch takes the merge path (temp table + merge).
    frame = validate_bars(SampleSource().fetch_daily_bars(date(2009, 8, 21), END, None)).valid
    frame = frame.iloc[:2001].copy().astype({"symbol": object})
    frame.loc[frame.index[-1], "symbol"] = None
    failing = pytest.raises(WarehouseError, match="null value .* line 2001.*nothing of this batch")
    with failing, warehouse.begin() as conn:
        upsert_bars(conn, frame, "sample")
    assert _fingerprint(warehouse) == before


def test_a_failing_batch_keeps_earlier_batches_whole(warehouse: sa.Engine) -> None:
    # A constraint that the last XOM rows break, after many good rows of the same batch.
    check = (
        "ALTER TABLE bars ADD CONSTRAINT test_xom_cutoff "
        "CHECK (symbol <> 'XOM' OR ts < '2010-03-20')"
    )
    with warehouse.begin() as conn:
        conn.exec_driver_sql(check)
    try:
        # a fresh interval: the rows are copied straight into bars (the merge path is
        # exercised by test_a_crash_mid_copy_leaves_no_partial_batch)
        with pytest.raises(WarehouseError, match="test_xom_cutoff"):
            ingest(warehouse, SampleSource(), START, END, SYMBOLS, "run-c", 0.05, batch_symbols=2)
    finally:
        with warehouse.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE bars DROP CONSTRAINT test_xom_cutoff")
    with warehouse.connect() as conn:
        loaded = conn.execute(sa.text("SELECT DISTINCT symbol FROM bars ORDER BY 1")).scalars()
        assert list(loaded) == ["AAPL", "IBM"], "batch 1 committed, batch 2 (MSFT, XOM) not"


def test_per_session_runs_equal_one_run_over_the_range(warehouse: sa.Engine) -> None:
    """As an Airflow backfill does: one run per session; the rows equal one run over all."""
    from pipelines import calendar

    first, last = date(2010, 3, 5), date(2010, 3, 12)
    ingest(warehouse, SampleSource(), first, last, SYMBOLS, "whole", 0.05, batch_symbols=3)
    whole = _fingerprint(warehouse)

    with warehouse.begin() as conn:
        conn.execute(sa.text("TRUNCATE bars"))
    sessions = calendar.sessions(first, last)
    assert len(sessions) == 6
    for day in sessions:
        ingest(warehouse, SampleSource(), day, day, SYMBOLS, f"backfill-{day}", 0.05)
    assert _fingerprint(warehouse) == whole
    assert whole[0] == 4 * 6


@pytest.mark.slow
def test_market_data_dag_runs_per_interval_equal_one_cli_run(
    warehouse: sa.Engine, monkeypatch
) -> None:
    """``dag.test()`` of market_data per data interval (a backfill) vs. one CLI run."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import market_data
    from airflow.utils.db import upgradedb
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.config import get_settings

    monkeypatch.setenv("UNIVERSE", ",".join(SYMBOLS))
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["ingest", "--source", "sample", "--start", "2010-03-09", "--end", "2010-03-10"]
    )
    assert result.exit_code == 0, result.output
    assert "1/1" in result.output, "the progress bar counts batches"
    whole = _fingerprint(warehouse)
    assert whole[0] == 4 * 2

    with warehouse.begin() as conn:
        conn.execute(sa.text("TRUNCATE bars"))
    upgradedb()
    dag = market_data.market_data()
    for task in dag.tasks:
        task.retries = 0
    ny = ZoneInfo("America/New_York")
    # A manual dag.test() run gets the interval that ends at its logical date:
    # [03-08 16:30, 03-09 16:30) then [03-09 16:30, 03-10 16:30) New York, one close each.
    for day in (9, 10):
        run = dag.test(logical_date=datetime(2010, 3, day, 16, 30, tzinfo=ny))
        assert run.state == "success"
    assert _fingerprint(warehouse) == whole
    with warehouse.connect() as conn:
        members = conn.execute(sa.text("SELECT count(*) FROM universe")).scalar_one()
    assert members == 4
    get_settings.cache_clear()
