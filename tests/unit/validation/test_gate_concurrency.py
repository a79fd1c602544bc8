"""Two ingests at once share the GX file project: both validate, neither sees stale GX state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
WORKER = """
import sys
from datetime import date
from pathlib import Path
from pipelines.sources.sample import SampleSource
from pipelines.validation import Limits, validate_bars

frame = SampleSource().fetch_daily_bars(date(2010, 3, 1), date(2010, 3, 31), ["IBM", "XOM"])
for i in range(2):
    result = validate_bars(frame, run_id=f"{sys.argv[2]}-{i}", limits=Limits(),
                           data_docs_root=Path(sys.argv[1]))
    assert len(result.valid) == len(frame), result.rejected
print("ok")
"""


@pytest.mark.slow
def test_two_processes_validate_in_the_same_gx_project(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), name],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("first", "second")
    ]  # fmt: skip
    for run in runs:
        out, err = run.communicate(timeout=1500)
        assert run.returncode == 0, err[-2000:]
        assert out.strip().endswith("ok")
    pages = list((tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site").rglob("*.html"))
    assert any("first-1" in str(p) for p in pages) and any("second-1" in str(p) for p in pages)
