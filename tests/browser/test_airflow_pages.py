"""The Airflow UI as a user sees it, in Debian's Chromium: log in, see the history run, open
the asset graph, trigger the backtest with its form, open the cockpit. Screenshots are saved
(tests/support/browser.py) and asserted on through the DOM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.browser import VIEWPORT, chromium, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


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
    """The form's input for param ``name``: Airflow puts ``element_<name>`` on the input itself,
    or on the wrapper of a number field."""
    return dialog.locator(f"input#element_{name}, #element_{name} input").first


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
