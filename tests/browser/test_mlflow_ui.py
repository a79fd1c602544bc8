"""The MLflow UI as a user sees it, in Debian's Chromium driven by Playwright.

A demo-like store (two trained versions, one backtest) is served by a real `mlflow ui` on a
free loopback port. The test opens the training experiment (it must land on the runs view,
not the GenAI overview), the registered model's page (each alias on its own version), and the
backtest's tearsheet artifact (all seven plots load: checked on the DOM and on the images'
natural sizes). Screenshots go to ``mlflow-ui/`` under the tier's screenshot folder
(:mod:`tests.support.browser`). Skips, saying why, without Chromium or Playwright;
never downloads a browser.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import get_settings
from tests.support import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = browser.SCREENSHOTS / "mlflow-ui"
SYMBOLS = ["AAPL", "IBM", "MSFT", "XOM", "JNJ", "WMT", "KO", "PG", "GE", "T", "PFE", "MRK",
           "CVX", "JPM", "INTC", "CSCO", "ORCL", "HD", "MCD", "DIS"]
PLOTS = 7  # pipelines.backtest.report.PLOTS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store(warehouse, load_sample_bars, tmp_path, monkeypatch):  # noqa: ANN201
    """A demo-like MLflow store: v1 @champion, v2 @challenger, a momentum backtest."""
    from pipelines import jobs
    from pipelines.features.store import build_features
    from pipelines.models.registry import MLflowRegistry
    from pipelines.models.training import train
    from pipelines.sources.sample import FIRST_SESSION, LAST_SESSION

    if reason := browser.skip_reason():  # skip before the minute of work
        pytest.skip(reason)
    monkeypatch.setenv("MLTRADE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    port = _free_port()
    monkeypatch.setenv("MLFLOW_UI_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    settings = get_settings()
    load_sample_bars(SYMBOLS)
    build_features(warehouse)
    registry = MLflowRegistry(settings)
    first = train(warehouse, registry, settings, date(2010, 8, 9), "browser-1")
    second = train(warehouse, registry, settings, date(2010, 8, 13), "browser-2")
    backtest = jobs.backtest("momentum", FIRST_SESSION, LAST_SESSION, "browser-3",
                             {"n_windows": 4, "mc_paths": 100, "rebalance_every": 5})
    yield settings, port, (first, second), backtest
    get_settings.cache_clear()


@pytest.fixture
def mlflow_ui(store) -> Iterator[str]:  # noqa: ANN001
    """`mlflow ui` on the store, on a free loopback port; its base URL."""
    settings, port, _, _ = store
    log = (settings.home / "mlflow-ui.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1", "--backend-store-uri", settings.mlflow_uri],
        stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its job runners (huey) are stopped with it, as a group
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a guard, not a speed check
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError("mlflow ui did not start: "
                                     + (settings.home / "mlflow-ui.log").read_text()[-2000:])
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_the_mlflow_ui_shows_runs_aliases_and_a_whole_tearsheet(store, mlflow_ui) -> None:
    from mlflow import MlflowClient
    from pipelines.models import registry

    settings, _, (first, second), backtest = store
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(settings.mlflow_uri)
    training_run = client.get_model_version(first.name, first.version).run_id
    run_name = client.get_run(training_run).info.run_name
    backtests = client.get_experiment_by_name(registry.BACKTESTS).experiment_id

    with browser.chromium() as chromium:
        page = chromium.new_page(viewport=browser.VIEWPORT)  # type: ignore[attr-defined]
        # Generous: on a loaded 2-core machine the UI's bundle alone can take a minute. A
        # guard against hanging, not a speed assertion.
        page.set_default_timeout(300_000)
        try:
            # 1. The training experiment, by the link MLFLOW_UI_URL gives: the runs view.
            page.goto(registry.experiment_url(settings, registry.TRAINING),
                      wait_until="domcontentloaded")
            page.get_by_text(run_name).first.wait_for()
            assert "/runs" in page.url and "workflowType=machine_learning" in page.url
            page.screenshot(path=ARTIFACTS / "experiment-runs.png")

            # 2. The registered model: each alias on its own version.
            page.goto(f"{mlflow_ui}/#/models/{first.name}", wait_until="domcontentloaded")
            aliases = {}
            for version in (first.version, second.version):
                row = page.get_by_role("row").filter(
                    has=page.get_by_role("link", name=f"Version {version}", exact=True))
                tags = row.locator("[role=status][title]")
                tags.first.wait_for()
                titles = tags.evaluate_all("t => t.map(e => e.title)")  # version tags too
                aliases[version] = sorted(set(titles) & {"champion", "challenger",
                                                         "previous_champion"})
            assert aliases == {first.version: ["champion"], second.version: ["challenger"]}
            page.screenshot(path=ARTIFACTS / "model-aliases.png")

            # 3. The backtest's tearsheet in MLflow's artifact preview: every plot loads.
            run_id = backtest["mlflow_run_id"]
            page.goto(f"{mlflow_ui}/#/experiments/{backtests}/runs/{run_id}/artifacts/index.html",
                      wait_until="domcontentloaded")
            frame = page.frame_locator("iframe").first
            frame.locator("h1").wait_for()
            images = frame.locator("img")
            images.nth(PLOTS - 1).wait_for()
            assert images.count() == PLOTS
            sizes = images.evaluate_all(
                "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight, "
                "i.getAttribute('src').slice(0, 22)])")
            assert all(done and w > 100 and h > 100 for done, w, h, _ in sizes), sizes
            assert {src for *_, src in sizes} == {"data:image/png;base64,"}
            page.screenshot(path=ARTIFACTS / "tearsheet.png", full_page=True)
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png")
            (ARTIFACTS / "failure.html").write_text(page.content())
            raise
