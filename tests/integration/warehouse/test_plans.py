"""The plans repository on the real schema: versions, weights, decisions and stress rows."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import PlanConflict
from pipelines.portfolio import plan_state
from pipelines.warehouse import plans
from pipelines.warehouse.plans import PlanRef

DAY = date(2010, 8, 16)


def _insert(engine: sa.Engine, plan: PlanRef, weights: dict[str, float]) -> bool:
    with engine.begin() as conn:
        return plans.insert(conn, plan, pd.Series(weights, dtype=float), "m", "1", "run-1")


def test_a_version_is_written_once_and_the_latest_is_found(warehouse) -> None:
    assert plans.latest(warehouse, "s", DAY) is None
    v1 = PlanRef("s", DAY, 1)
    assert _insert(warehouse, v1, {"MSFT": 0.3, "AAPL": 0.2})
    assert not _insert(warehouse, v1, {"XOM": 0.9})  # another run wrote it first: unchanged
    assert plans.target_weights(warehouse, v1).to_dict() == {"AAPL": 0.2, "MSFT": 0.3}
    assert _insert(warehouse, PlanRef("s", DAY, 2), {})  # all cash is a plan too
    assert plans.latest(warehouse, "s", DAY) == PlanRef("s", DAY, 2)
    _insert(warehouse, PlanRef("s", date(2010, 8, 13), 3), {"KO": 0.1})  # an earlier session
    assert plans.newest(warehouse, "s") == (PlanRef("s", DAY, 2), plan_state.PROPOSED)
    assert plans.newest(warehouse, "other") is None
    assert plans.target_weights(warehouse, PlanRef("s", DAY, 2)).empty
    assert plans.decision(warehouse, v1) == (plan_state.PROPOSED, None)


def test_scaled_weights_and_the_decision_are_stored_and_read_back(warehouse) -> None:
    plan = PlanRef("s", DAY, 1)
    _insert(warehouse, plan, {"AAPL": 0.2, "MSFT": 0.3})
    with warehouse.begin() as conn:
        assert plans.locked_status(conn, plan) == plan_state.PROPOSED
        plans.set_weights(conn, plan, pd.Series({"AAPL": 0.1, "MSFT": 0.15}))
        plan_state.move(conn, plan, {plan_state.PROPOSED}, plan_state.BLOCKED)
        plans.set_risk_report(conn, plan, {"approved": False, "breaches": ["drawdown"]})
    assert plans.target_weights(warehouse, plan).to_dict() == {"AAPL": 0.1, "MSFT": 0.15}
    assert plans.decision(warehouse, plan) == (
        plan_state.BLOCKED, {"approved": False, "breaches": ["drawdown"]}
    )
    with pytest.raises(PlanConflict), warehouse.begin() as conn:  # a stale view changes nothing
        plan_state.move(conn, plan, {plan_state.PROPOSED}, plan_state.APPROVED)


def test_the_last_submitted_plan_is_the_one_the_book_was_traded_to(warehouse) -> None:
    first, second = PlanRef("s", date(2010, 8, 9), 1), PlanRef("s", DAY, 1)
    for plan in (first, second):
        _insert(warehouse, plan, {"AAPL": 0.5})
    with warehouse.begin() as conn:
        plan_state.move(conn, first, {plan_state.PROPOSED}, plan_state.APPROVED)
        plan_state.move(conn, first, {plan_state.APPROVED}, plan_state.SUBMITTED)
    assert plans.last_submitted(warehouse, "s", DAY) == first  # the later one is only proposed
    assert plans.latest_before(warehouse, "s", date(2010, 8, 17)) == second  # any status
    assert plans.latest_before(warehouse, "s", DAY) == first
    assert plans.latest_before(warehouse, "s", first.session_date) is None
    assert plans.last_submitted(warehouse, "s", date(2010, 8, 6)) is None


def test_stress_rows_are_replaced_not_appended(warehouse) -> None:
    plan = PlanRef("s", DAY, 1)
    _insert(warehouse, plan, {"AAPL": 0.5})
    row = {
        "scenario": "covid_2020", "kind": "historical", "start_date": date(2020, 2, 19),
        "end_date": date(2020, 3, 23), "covered": True, "loss": 0.12, "detail": {"n": 1},
    }  # fmt: skip
    plans.replace_stress(warehouse, plan, [row])
    plans.replace_stress(warehouse, plan, [{**row, "loss": 0.2}])
    [stored] = plans.stress(warehouse, plan)
    assert (stored.scenario, stored.covered, stored.loss) == ("covid_2020", True, 0.2)
    plans.replace_stress(warehouse, plan, [])
    assert plans.stress(warehouse, plan) == []


def test_the_approval_summary_measures_turnover_against_the_previous_plan(warehouse) -> None:
    from pipelines.approval import plan_summary

    _insert(warehouse, PlanRef("s", date(2010, 8, 12), 1), {"AAPL": 0.9})  # superseded below
    _insert(warehouse, PlanRef("s", date(2010, 8, 12), 2), {"AAPL": 0.4, "KO": 0.2})
    _insert(warehouse, PlanRef("s", DAY, 1), {"AAPL": 0.3, "MSFT": 0.3})
    summary = plan_summary(warehouse, {"strategy": "s", "session_date": DAY.isoformat(),
                                       "plan_version": 1})  # fmt: skip
    assert summary["turnover"] == pytest.approx(0.5 * (0.1 + 0.2 + 0.3))
    assert summary["top_weights"] == {"AAPL": 0.3, "MSFT": 0.3}
    first = plan_summary(warehouse, {"strategy": "s", "session_date": "2010-08-12",
                                     "plan_version": 2})  # fmt: skip
    assert first["turnover"] == pytest.approx(0.3)  # from cash
