"""The predictions repository: a rerun changes nothing, a new value replaces the old one."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import predictions

DAY = date(2010, 8, 13)


def _run_ids(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT symbol, run_id FROM predictions")).all())


def test_write_read_and_rerun(warehouse) -> None:
    assert predictions.read(warehouse, "m", "1", DAY).empty
    expected = pd.Series({"AAPL": 0.001, "MSFT": -0.002})
    assert predictions.write(warehouse, "m", "1", DAY, expected, "fs1", "run-1") == 2
    assert predictions.read(warehouse, "m", "1", DAY).sort_index().to_dict() == expected.to_dict()

    predictions.write(warehouse, "m", "1", DAY, expected, "fs1", "run-2")  # same values
    assert _run_ids(warehouse) == {"AAPL": "run-1", "MSFT": "run-1"}
    predictions.write(warehouse, "m", "1", DAY, pd.Series({"AAPL": 0.003}), "fs1", "run-3")
    assert _run_ids(warehouse) == {"AAPL": "run-3", "MSFT": "run-1"}
    assert predictions.read(warehouse, "m", "1", DAY)["AAPL"] == 0.003
    assert predictions.read(warehouse, "m", "2", DAY).empty  # another version is another model
    assert predictions.write(warehouse, "m", "1", DAY, pd.Series(dtype=float), "fs1", "r") == 0
