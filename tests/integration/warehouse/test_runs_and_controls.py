"""The runs and controls repositories on the real schema: a run's row from start to finish,
the sweep's guarded update, and a control never set, set, then changed."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.warehouse import controls, runs


def test_a_run_is_started_finished_and_reported_by_stage(warehouse) -> None:
    first = runs.start(warehouse, "r1", "ingest", '{"source": "sample"}', 1, "h", 10.0)
    second = runs.start(warehouse, "r1", "train", "{}", 2, "other", None)
    assert [(r.id, r.pid, r.process_started) for r in runs.running_on(warehouse, "h")] == [
        (first, 1, 10.0)
    ]
    runs.finish(warehouse, first, "success", '{"rows": 3}', None)
    runs.fail_if_running(warehouse, first, "interrupted")  # finished meanwhile: left alone
    runs.fail_if_running(warehouse, second, "interrupted")
    assert runs.running_on(warehouse, "h") == []
    with warehouse.connect() as conn:
        assert runs.last_statuses(conn) == {"ingest": "success", "train": "failed"}
        stored = conn.execute(
            sa.text("SELECT summary, error FROM pipeline_runs WHERE id = :id"), {"id": first}
        ).one()
    assert (stored.summary, stored.error) == ({"rows": 3}, None)


def test_a_control_never_set_has_no_row_and_a_write_replaces_it(warehouse) -> None:
    with warehouse.connect() as conn:
        assert controls.state(conn, controls.KILL_SWITCH) is None
    controls.write(warehouse, controls.KILL_SWITCH, True, "drill")
    controls.write(warehouse, controls.KILL_SWITCH, False, "drill over")
    with warehouse.connect() as conn:
        state = controls.state(conn, controls.KILL_SWITCH)
    assert state is not None
    assert (state.enabled, state.reason) == (False, "drill over")
    assert state.updated_at is not None
