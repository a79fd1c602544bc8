from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.runlog import stage_run

runner = CliRunner()


def test_stage_run_records_success_and_failure(warehouse: sa.Engine) -> None:
    with stage_run(warehouse, "r1", "demo-stage", start="2010-01-04") as run:
        run.summary = {"rows": 3}
    with pytest.raises(RuntimeError), stage_run(warehouse, "r1", "demo-stage"):
        raise RuntimeError("boom")
    with warehouse.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, params, summary, error, finished_at "
                                    "FROM pipeline_runs ORDER BY id")).all()
    assert [r.status for r in rows] == ["success", "failed"]
    assert rows[0].params == {"start": "2010-01-04"} and rows[0].summary == {"rows": 3}
    assert rows[1].error == "RuntimeError: boom"
    assert all(r.finished_at is not None for r in rows)


def test_kill_switch_commands_persist_the_switch(warehouse: sa.Engine) -> None:
    assert "kill switch is off" in runner.invoke(app, ["kill-switch", "status"]).output
    on = runner.invoke(app, ["kill-switch", "on", "--reason", "broker outage"])
    assert on.exit_code == 0 and "ON" in on.output and "broker outage" in on.output
    assert "ON" in runner.invoke(app, ["kill-switch", "status"]).output
    assert "kill switch is off" in runner.invoke(app, ["kill-switch", "off"]).output


def test_db_upgrade_is_a_noop_when_current(warehouse: sa.Engine) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "up to date" in result.output


def test_bad_dates_are_named(warehouse: sa.Engine) -> None:
    result = runner.invoke(app, ["ingest", "--start", "2010-13-01", "--end", "2010-12-31"])
    assert result.exit_code != 0 and "--start must be a date" in result.output
