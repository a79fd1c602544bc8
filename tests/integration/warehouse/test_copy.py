"""COPY text encoding: what goes in comes back exactly (escapes, NULLs, float precision)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.engine import copy_frame, encode_copy_text


def test_values_round_trip_through_copy(engine: sa.Engine) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "s": ["plain", "tab\there", "new\nline", "back\\slash", None, "quote'\"", "é"],
            "d": [date(2010, 1, 4)] * 6 + [None],
            "ts": pd.to_datetime(["2010-01-04 21:00:00.123456"] * 7, utc=True),
            "x": [0.1, 1 / 3, 1e-300, 123456789.123456789, float("inf"), -0.0, *rng.normal(size=1)],
            "n": [1, 2, 3, 4, 5, 6, 2**40],
        }
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE copy_check (s text, d date, ts timestamptz, x float8, n bigint) "
            "ON COMMIT DROP"
        )
        copy_frame(conn, "copy_check", frame, ["s", "d", "ts", "x", "n"], chunk_rows=3)
        back = pd.read_sql(sa.text("SELECT * FROM copy_check"), conn)
    assert back["s"].tolist() == frame["s"].tolist()
    assert back["d"].tolist() == frame["d"].tolist()
    assert (back["ts"] == frame["ts"]).all()
    assert back["x"].tolist() == frame["x"].tolist()  # bit-for-bit, not approximately
    assert back["n"].tolist() == frame["n"].tolist()


def test_nan_is_sent_as_nan_and_empty_frames_as_nothing() -> None:
    assert encode_copy_text(pd.DataFrame({"x": [float("nan")]}), ["x"]) == "nan\n"
    assert encode_copy_text(pd.DataFrame({"x": []}), ["x"]) == ""
