"""One redaction boundary: known fake secrets injected through each path never come out.

Paths: the CLI's output and error line, log lines (stderr and LOG_FILE), ``pipeline_runs``
(error, params, summary), MLflow tag values, and an Alpaca error body that echoes the request
headers, served by the local Alpaca server and read through alpaca-py.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pipelines.monitoring.logging import Redactor, redact
from tests.reliability.probes import assert_one_line_error
from tests.support.alpaca_trading_server import AlpacaTradingServer, Fault

KEY = "PKFAKEKEY0123456789"
SECRET = "fakeSecretXyz0987654321abc"
DB_PASSWORD = "dbPassw0rd-fake"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("postgresql://trader:dbPassw0rd-fake@db:5432/mltrade", DB_PASSWORD),
        ("postgresql://trader@db/mltrade?password=dbPassw0rd-fake&sslmode=require", DB_PASSWORD),
        ("postgresql:///mltrade?host=/tmp&PASSWORD=dbPassw0rd-fake", DB_PASSWORD),
        ("host=db port=5432 user=trader password=dbPassw0rd-fake dbname=mltrade", DB_PASSWORD),
        ("host=db password='dbPassw0rd-fake with space' dbname=mltrade", "with space"),
        ('{"APCA-API-SECRET-KEY": "fakeSecretXyz0987654321abc"}', SECRET),
        ("APCA-API-KEY-ID: PKFAKEKEY0123456789", KEY),
        ("Authorization: Bearer fakeSecretXyz0987654321abc", SECRET),
        ("ALPACA_SECRET_KEY=fakeSecretXyz0987654321abc", SECRET),
    ],
)
def test_passwords_in_any_position_are_masked(text, leaked) -> None:
    masked = Redactor().text(text)
    assert leaked not in masked and "***" in masked


def test_known_secret_values_are_masked_wherever_they_appear(monkeypatch) -> None:
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    from pipelines.config import get_settings

    get_settings.cache_clear()
    assert redact(f"the account said {SECRET[::1]} was wrong") == "the account said *** was wrong"
    get_settings.cache_clear()


def test_mlflow_tag_values_pass_the_boundary() -> None:
    from pipelines.models.registry import _safe_tags

    tags = _safe_tags({"source": f"postgresql://u:{DB_PASSWORD}@h/db", "n": 3})
    assert DB_PASSWORD not in json.dumps(tags) and tags["n"] == "3"


@pytest.fixture
def echoing_alpaca(monkeypatch, tmp_path):
    """The local Alpaca server with fake keys, answering the next GETs with a 403 whose body
    echoes the request's headers; settings point BROKER=alpaca at it, logs to a file."""
    echo = (
        f"forbidden for key {KEY}; request headers: APCA-API-KEY-ID: {KEY}, "
        f"APCA-API-SECRET-KEY: {SECRET}"
    )
    with AlpacaTradingServer(api_key=KEY, secret_key=SECRET) as server:
        for _ in range(4):
            server.inject(Fault(status=403, method="GET", path="/v2/",
                                body={"code": 40310000, "message": echo}))
        for key, value in {
            "BROKER": "alpaca", "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
            "ALPACA_BASE_URL": server.url, "ALPACA_TIMEOUT_SECONDS": "3",
            "BROKER_MAX_ATTEMPTS": "1", "BROKER_BACKOFF_SECONDS": "0",
            "LOG_FILE": str(tmp_path / "mltrade.log"), "LOG_LEVEL": "DEBUG",
        }.items():
            monkeypatch.setenv(key, value)
        yield server, tmp_path / "mltrade.log"


def test_an_alpaca_error_echoing_headers_leaks_nowhere(cli, warehouse, echoing_alpaca) -> None:
    server, log_file = echoing_alpaca
    outcome = cli("reconcile")
    line = assert_one_line_error(outcome, 1, "Alpaca answered 403")
    assert "***" in line
    logged = log_file.read_text()
    assert "Traceback" in logged  # the file keeps the whole story ...
    for secret in (KEY, SECRET):  # ... and nothing of the keys, nor does the terminal
        assert secret not in outcome.out + outcome.err + logged


def test_pipeline_runs_store_no_secret(warehouse, echoing_alpaca, monkeypatch) -> None:
    from pipelines.config import get_settings
    from pipelines.errors import BrokerError
    from pipelines.execution.brokers import get_broker
    from pipelines.runlog import stage_run

    get_settings.cache_clear()
    settings = get_settings()
    with pytest.raises(BrokerError), stage_run(
        warehouse, "probe", "reconcile", note=f"postgresql://u:{DB_PASSWORD}@h/db"
    ) as run:
        run.summary = {"dsn": f"host=h password={DB_PASSWORD}"}
        get_broker(settings, warehouse).get_positions()
    with warehouse.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, error, params::text, summary::text FROM pipeline_runs")
        ).one()
    assert row.status == "failed" and "Alpaca answered 403" in row.error
    stored = " ".join(str(v) for v in row)
    for secret in (KEY, SECRET, DB_PASSWORD):
        assert secret not in stored
    get_settings.cache_clear()


def test_metric_labels_pass_the_boundary() -> None:
    from prometheus_client import generate_latest

    from pipelines.monitoring.metrics import REGISTRY, record_stage

    source = f"postgresql://u:{DB_PASSWORD}@h/db"
    summary = {"rows_fetched": 1, "rows_loaded": 1}
    record_stage("ingest", "success", 1.0, summary, {"source": source})
    exposed = generate_latest(REGISTRY).decode()
    assert "postgresql://u:***@h/db" in exposed and DB_PASSWORD not in exposed
