"""The validation and equity marks repositories on the real schema: a quarantined row kept
once, the data-quality read of the latest run covering a day, and marks replaced in a window."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from pipelines.warehouse import equity_marks, validation

DAY = date(2010, 8, 16)
VERSION = datetime(2010, 8, 17, tzinfo=UTC)


def _quarantined(row_hash: str) -> dict[str, object]:
    return {"row_hash": row_hash, "source": "sample", "symbol": "MSFT", "session_date": DAY,
            "expectation": "close_positive", "reason": "close is 0", "raw": json.dumps({}),
            "run_id": "r1"}  # fmt: skip


def _run(conn, run_id: str, start: date, end: date, failed: int, success: bool) -> None:
    validation.insert_run(conn, run_id, "sample", "bars_v3", start, end, 10, failed, success, "{}")


def test_a_rejected_row_is_quarantined_once(warehouse) -> None:
    with warehouse.begin() as conn:
        assert validation.insert_quarantine(conn, []) == 0
        assert validation.insert_quarantine(conn, [_quarantined("a"), _quarantined("b")]) == 2
        assert validation.insert_quarantine(conn, [_quarantined("a")]) == 0
        assert validation.quarantined_rows(conn) == 2


def test_the_latest_run_covering_a_day_sums_its_covering_batches(warehouse) -> None:
    assert validation.latest_covering(warehouse, DAY) is None
    with warehouse.begin() as conn:
        _run(conn, "old", DAY, DAY, 0, True)
        _run(conn, "new", date(2010, 8, 1), DAY, 1, True)
        _run(conn, "new", DAY, date(2010, 8, 20), 3, False)
        _run(conn, "new", date(2010, 9, 1), date(2010, 9, 3), 5, True)  # does not cover DAY
    row = validation.latest_covering(warehouse, DAY)
    assert row is not None
    assert (row.run_id, row.success, row.rows_failed, row.rows_checked) == ("new", False, 4, 20)
    with warehouse.connect() as conn:
        assert [tuple(r) for r in validation.last_validations(conn)] == [("sample", 10, 5, True)]


def _mark(day: int, equity: float) -> dict[str, object]:
    return {"session_date": date(2010, 8, day), "equity": equity, "initial_cash": 100.0,
            "fills": 1, "fills_cash": -50.0, "bars_version": VERSION}  # fmt: skip


def test_marks_after_a_session_are_replaced_and_the_others_kept(warehouse) -> None:
    equity_marks.replace(warehouse, None, date(2010, 8, 15), [_mark(15, 99.0)])
    equity_marks.replace(
        warehouse, None, date(2010, 8, 18), [_mark(d, 100.0) for d in (16, 17, 18)]
    )
    equity_marks.replace(warehouse, date(2010, 8, 16), date(2010, 8, 17), [_mark(17, 101.0)])
    with warehouse.connect() as conn:
        assert [(m.session_date.day, m.equity) for m in equity_marks.through(conn, DAY)] == [
            (16, 100.0)
        ]
        marks = equity_marks.through(conn, date(2010, 8, 31))
    assert [(m.session_date.day, m.equity) for m in marks] == [
        (16, 100.0),
        (17, 101.0),
        (18, 100.0),
    ]
    assert (marks[0].fills, marks[0].fills_cash, marks[0].bars_version) == (1, -50.0, VERSION)
