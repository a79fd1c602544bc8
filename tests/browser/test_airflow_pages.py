"""The Airflow UI as a user sees it, in Debian's Chromium: log in, see the history run, open
the asset graph, trigger the backtest with its form, approve a rebalance waiting in "Required
actions", open the cockpit. Screenshots are saved
(tests/support/browser.py) and asserted on through the DOM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

import pytest

from tests.support.airflow_processes import wait_for
from tests.support.browser import VIEWPORT, chromium, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
TRAIN_AS_OF = date(2010, 8, 9)
APPROVAL_DAY = "2010-08-11"


@pytest.fixture(scope="module")
def page(airflow_ui) -> Iterator[object]:
    """A logged-in page (the login form, as a user fills it)."""
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{airflow_ui.base}/")
        page.wait_for_url(re.compile(r"/auth/login"))
        screenshot(page, "airflow-login")
        page.locator("input[name=username]").fill(airflow_ui.user)
        page.locator("input[name=password]").fill(airflow_ui.password)
        page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        yield page
        context.close()


def test_the_home_page_lists_the_dags_with_their_descriptions(page, airflow_ui) -> None:
    page.goto(f"{airflow_ui.base}/dags")
    page.get_by_text("premarket_rebalance").first.wait_for()
    for dag_id in ("market_data", "features", "train", "promote", "backtest"):
        assert page.get_by_text(dag_id, exact=True).count() >= 1, dag_id
    screenshot(page, "airflow-dags")


def test_the_history_run_and_its_log_are_shown(page, airflow_ui) -> None:
    run_id = airflow_ui.history_run_id
    page.goto(f"{airflow_ui.base}/dags/market_data/runs/{run_id}/tasks/ingest")
    page.get_by_text(re.compile("rows_loaded")).first.wait_for()
    body = page.locator("body").inner_text()
    assert "because it is a closure" not in body
    screenshot(page, "airflow-ingest-log")


def test_the_asset_graph_shows_the_pipeline(page, airflow_ui) -> None:
    assets = {a["name"]: a for a in airflow_ui.api.ok("GET", "/api/v2/assets")["assets"]}
    page.goto(f"{airflow_ui.base}/assets/{assets['features']['id']}")
    graph = page.locator(".react-flow").first
    graph.get_by_text("market_data").wait_for()
    text = graph.inner_text()
    assert {"market_data", "bars", "features"} <= set(text.split()), text
    screenshot(page, "airflow-asset-graph")
    # Who reads the features: train's fit and the rebalance's predict (task inlets).
    page.get_by_role("button", name="Task Dependencies").click()
    graph.get_by_text("fit").first.wait_for()
    assert "predict" in graph.inner_text()


def _field(dialog, name: str):  # noqa: ANN001, ANN202  (Playwright Locators)
    """The form's input for param ``name``: named ``element_<name>`` (a text or date field also
    has it as its id; a number field's id is Chakra's ``number-input:element_<name>:input``)."""
    return dialog.locator(f'input[name="element_{name}"], input#element_{name}').first


def test_the_backtest_form_triggers_a_run_with_its_dates(page, airflow_ui) -> None:
    page.goto(f"{airflow_ui.base}/dags/backtest")
    page.get_by_role("button", name=re.compile("^trigger", re.I)).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "start" in text and "end" in text and "n_windows" in text
    assert dialog.get_by_text("This field is required").count() == 2, "start and end"
    assert _field(dialog, "n_windows").input_value() == "4"
    screenshot(page, "airflow-backtest-form")
    _field(dialog, "start").fill("2009-08-21")
    _field(dialog, "end").fill("2010-08-20")
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    dialog.wait_for(state="hidden")
    runs = airflow_ui.api.ok("GET", "/api/v2/dags/backtest/dagRuns?order_by=-run_after")
    assert runs["dag_runs"], "the form created no run"
    conf = runs["dag_runs"][0]["conf"]
    assert (conf["start"], conf["end"], conf["n_windows"]) == ("2009-08-21", "2010-08-20", 4)


def test_the_cockpit_shows_plan_risk_orders_pnl_and_kill_switch(page, airflow_ui) -> None:
    page.goto(f"{airflow_ui.base}/plugin/mltrade-cockpit")
    frame = page.frame_locator("iframe").first
    frame.locator("#kill-switch").wait_for()
    for section in ("#plan", "#risk", "#orders", "#pnl", "#links"):
        assert frame.locator(section).count() == 1, section
    assert "off" in frame.locator("#kill-switch").inner_text()
    screenshot(page, "airflow-cockpit")


@pytest.fixture
def champion(airflow_ui, monkeypatch) -> None:
    """Features and a @champion in the Airflow's warehouse and MLflow store (the train DAG's
    jobs, run here: the UI part is the approval, not the training)."""
    from pipelines import jobs
    from pipelines.config import get_settings

    for name in ("UNIVERSE", "DATA_SOURCE", "MAX_WEIGHT", "MLFLOW_TRACKING_URI"):
        monkeypatch.setenv(name, airflow_ui.env[name])
    get_settings.cache_clear()
    jobs.build_features(None, None, "browser-features")
    jobs.train_model(TRAIN_AS_OF, "browser-train")
    yield
    get_settings.cache_clear()


def _orders(day: str) -> int:
    import sqlalchemy as sa

    from pipelines.warehouse import get_engine

    with get_engine().connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM orders WHERE session_date = :d"),
                            {"d": day}).scalar_one()


def test_a_plan_waits_in_required_actions_and_approve_sends_it(page, airflow_ui, champion):
    api, dag = airflow_ui.api, "premarket_rebalance"
    api.ok("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})
    run = api.ok("POST", f"/api/v2/dags/{dag}/dagRuns",
                 {"logical_date": None, "conf": {"session_date": APPROVAL_DAY}})
    run_id = run["dag_run_id"]
    waiting = f"/api/v2/dags/{dag}/dagRuns/{quote(run_id)}/hitlDetails?response_received=false"
    wait_for("the rebalance to ask for approval",
             lambda: api.ok("GET", waiting)["total_entries"], [], 300, poll_s=2)
    assert _orders(APPROVAL_DAY) == 0, "nothing is sent before a person approves"

    page.goto(f"{airflow_ui.base}/dags/{dag}/runs/{run_id}/tasks/approval/required_actions")
    page.get_by_text("turnover").first.wait_for()
    body = page.locator("body").inner_text()
    for shown in ("VaR", "REBALANCE_APPROVAL=always"):
        assert shown in body, f"the approval page does not show {shown!r}"
    screenshot(page, "airflow-approval")
    page.get_by_role("button", name="Approve", exact=True).click()

    def finished() -> str | None:
        state = api.ok("GET", f"/api/v2/dags/{dag}/dagRuns/{quote(run_id)}")["state"]
        return state if state in ("success", "failed") else None

    assert wait_for("the approved run to finish", finished, [], 300, poll_s=2) == "success"
    assert _orders(APPROVAL_DAY) > 0, "the approved plan's orders were sent"
