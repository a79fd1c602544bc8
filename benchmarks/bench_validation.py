"""Validation gate speed on the whole sample (122,574 real daily bars, 524 symbols).

    .venv/bin/python benchmarks/bench_validation.py [--repeat 3]

Prints, for the same frame in the same run: the gate as ingest runs it (project code building
the check frame, then the GX checkpoint), split into its two parts; the same with Data Docs
built to a temporary folder (a file-backed GX context); and, as the raw limit, the row rules GX
evaluates written as plain vectorized pandas masks (what the gate would cost without GX's
metric machinery). Times are the median of ``--repeat`` warm runs (one cold run first).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.sources.sample import FIRST_SESSION, LAST_SESSION, SampleSource
from pipelines.validation import Limits, validate_bars
from pipelines.validation.gate import GX_COLUMNS, _run_suite
from pipelines.validation.prepare import check_frame

LIMITS = Limits(stale_sessions=3, max_close_jump=0.5)


def _pandas_rules(check: pd.DataFrame) -> pd.Series:
    """The GX row rules as pandas masks: True where a row fails any of them (raw limit)."""
    bad = check["type_error"].notna() | ~check["ts_zone"].isin(["UTC"])
    for column in ("symbol", "ts", "session_date", "open", "high", "low", "close", "volume"):
        bad |= check[column].isna()
    bad |= ~check["symbol"].astype("str").str.fullmatch(
        r"[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,4})?"
    )
    bad |= check["ts"] != check["session_close"]
    for column in ("open", "high", "low", "close"):
        bad |= ~((check[column] > 0) & (check[column] <= 1e7))
    bad |= ~((check["volume"] >= 0) & (check["volume"] <= 1e13))
    for high, low in (
        ("high", "low"),
        ("high", "open"),
        ("high", "close"),
        ("open", "low"),
        ("close", "low"),
    ):
        bad |= check[high] < check[low]
    bad |= check["copy_index"] > 0
    first = check["copy_index"] == 0
    bad |= first & check[first].duplicated(["symbol", "ts"], keep=False).reindex(
        check.index, fill_value=False
    )
    bad |= check["stale_repeat"] > 0
    bad |= check["close_jump"].abs() > LIMITS.max_close_jump
    return bad


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    result = fn()  # cold
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pipelines").setLevel(logging.WARNING)
    frame = SampleSource().fetch_daily_bars(FIRST_SESSION, LAST_SESSION, None)
    n = len(frame)

    gate, result = _time(lambda: validate_bars(frame, limits=LIMITS), args.repeat)
    prepare, check = _time(lambda: check_frame(frame, None, LIMITS), args.repeat)
    gx_cols = check[list(GX_COLUMNS)]
    gx, failing = _time(lambda: _run_suite(gx_cols, LIMITS, "bench", None), args.repeat)
    raw, mask = _time(lambda: _pandas_rules(check), args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        docs, _ = _time(
            lambda: validate_bars(frame, limits=LIMITS, data_docs_root=Path(folder)), args.repeat
        )

    gx_rows = set().union(*map(set, failing.values()))
    assert gx_rows == set(np.flatnonzero(mask.to_numpy())), "pandas masks disagree with GX"
    assert len(result.rejected) == len(gx_rows)
    rows = [
        ("gate (check frame + GX, as ingest runs it)", gate),
        ("  check frame (project code)", prepare),
        ("  GX checkpoint, 26 expectations", gx),
        ("gate + Data Docs (file-backed context)", docs),
        ("raw limit: same row rules as pandas masks", raw),
    ]
    print(f"validation of {n:,} bars ({len(result.rejected)} rejected), median of {args.repeat}")
    print(f"{'':46} {'seconds':>8} {'rows/s':>12}")
    for label, seconds in rows:
        print(f"{label:46} {seconds:8.3f} {n / seconds:12,.0f}")
    print(
        f"GX checkpoint / pandas masks: {gx / raw:.0f}x; whole gate / pandas masks: "
        f"{gate / raw:.0f}x"
    )


if __name__ == "__main__":
    main()
