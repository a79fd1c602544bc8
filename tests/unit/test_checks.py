"""Bad configuration refuses to start, naming the setting and what to do; `mltrade check`."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from pipelines.checks import (
    check_mlflow,
    check_warehouse,
    preflight,
    run_checks,
    static_problems,
)
from pipelines.cli import app
from pipelines.config import Settings, get_settings
from pipelines.errors import ConfigurationError

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_alpaca_without_keys_is_named_with_what_to_do() -> None:
    problems = static_problems(Settings(broker="alpaca"))
    assert len(problems) == 1
    assert "BROKER=alpaca needs ALPACA_API_KEY and ALPACA_SECRET_KEY" in problems[0]
    assert "BROKER=simulated" in problems[0]
    keyed = Settings(broker="alpaca", data_source="alpaca",
                     alpaca_api_key=SecretStr("k" * 10), alpaca_secret_key=SecretStr("s" * 10))
    assert static_problems(keyed) == []


def test_malformed_urls_are_named_without_their_password() -> None:
    problems = static_problems(Settings(warehouse_url="mysql://u:fake-pw@h:99999/x",
                                        pushgateway_url="http://h:port/"))
    text = " ".join(problems)
    assert "WAREHOUSE_URL" in text and "PUSHGATEWAY_URL" in text
    assert "PostgreSQL URL" in text
    assert "fake-pw" not in text


def test_preflight_raises_on_every_problem(monkeypatch) -> None:
    monkeypatch.setenv("DATA_SOURCE", "alpaca")
    with pytest.raises(ConfigurationError, match="DATA_SOURCE=alpaca needs ALPACA_API_KEY"):
        preflight()


def test_live_trading_without_confirmation_refuses(monkeypatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "live")
    result = runner.invoke(app, ["summary"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigurationError)
    assert "LIVE_TRADING_CONFIRMED=true" in str(result.exception)


def test_a_malformed_number_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("MAX_WEIGHT", "five percent")
    result = runner.invoke(app, ["rebalance", "--date", "2010-08-16"])
    assert isinstance(result.exception, ConfigurationError)
    assert "max_weight" in str(result.exception)


def test_unreachable_warehouse_is_reported_with_the_setting_and_no_password() -> None:
    port = _closed_port()
    result = check_warehouse(Settings(warehouse_url=f"postgresql://u:fake-1234@127.0.0.1:{port}/x"))
    assert not result.ok
    assert "WAREHOUSE_URL" in result.detail and f"127.0.0.1:{port}" in result.detail
    assert "fake-1234" not in result.detail


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (the stdlib's name)
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"")

    def log_message(self, *args):
        pass


def test_mlflow_server_reachable_or_named() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = check_mlflow(Settings(mlflow_tracking_uri=f"http://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()
        server.server_close()
    assert up.ok and "answered 200" in up.detail
    down = check_mlflow(Settings(mlflow_tracking_uri=f"http://127.0.0.1:{_closed_port()}"))
    assert not down.ok and "MLFLOW_TRACKING_URI" in down.detail


def test_check_command_reports_every_check_and_fails_on_one(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    names = [r.name for r in run_checks()]
    assert names == ["settings", "trading mode", "warehouse", "kill switch", "mlflow"]
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "FAIL  mlflow" in result.output and "ok  settings" in result.output


def test_a_refused_command_touches_no_data(warehouse, monkeypatch) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("BROKER", "alpaca")
    result = runner.invoke(app, ["ingest", "--start", "2010-03-01", "--end", "2010-03-05"])
    assert isinstance(result.exception, ConfigurationError)
    with warehouse.connect() as conn:
        counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("pipeline_runs", "bars", "validation_runs")]
    assert counts == [0, 0, 0]
