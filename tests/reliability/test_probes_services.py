"""Unreachable or failing services: MLflow answering 503 or not at all is "unavailable", never
"no champion"; a definite not-found from a real MLflow store is "absent"; no alias moves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.errors import ModelError, RegistryUnavailableError
from tests.reliability.probes import assert_one_line_error, fingerprint

MLFLOW_EXIT = 4


class _Unavailable(BaseHTTPRequestHandler):
    """Answers every MLflow REST call as an overloaded proxy does: 503, plain text."""

    def _answer(self) -> None:
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Service Unavailable")

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mlflow_503(monkeypatch) -> Iterator[str]:
    """MLFLOW_TRACKING_URI pointing at a server that answers 503 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries: minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    yield uri
    server.shutdown()
    server.server_close()


@pytest.fixture
def mlflow_closed(monkeypatch) -> str:
    """MLFLOW_TRACKING_URI on a loopback port nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return uri


def test_alias_lookup_on_a_503_is_unavailable_not_absent(settings, mlflow_503) -> None:
    from pipelines.config import get_settings
    from pipelines.models.registry import MLflowRegistry

    get_settings.cache_clear()
    with pytest.raises(RegistryUnavailableError, match="MLflow at http://127.0.0.1"):
        MLflowRegistry(get_settings()).alias_version("mltrade-returns", "champion")


def test_training_key_search_on_a_503_is_an_error_not_a_retrain(settings, mlflow_503) -> None:
    from pipelines.config import get_settings
    from pipelines.models.registry import MLflowRegistry

    get_settings.cache_clear()
    with pytest.raises(RegistryUnavailableError, match="training key"):
        MLflowRegistry(get_settings()).find_version("mltrade-returns", "abc123")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("models", "promote", "--version", "1"), id="manual-promote"),
        pytest.param(("models", "rollback"), id="rollback"),
    ],
)
def test_mlflow_503_fails_the_command_naming_mlflow(cli, warehouse, mlflow_503, argv) -> None:
    before = fingerprint(warehouse)
    assert_one_line_error(cli(*argv), MLFLOW_EXIT, "MLflow", "MLFLOW_TRACKING_URI")
    assert fingerprint(warehouse) == before


def test_unreachable_mlflow_is_not_reported_as_no_champion(cli, warehouse, mlflow_closed) -> None:
    line = assert_one_line_error(cli("models", "rollback"), MLFLOW_EXIT, "MLflow")
    assert "previous_champion" not in line.split("during")[0]
    assert "train one" not in line


@pytest.fixture
def unused_model_name(monkeypatch) -> None:
    """A model name no other test registers in the session's store (MODEL_NAME)."""
    monkeypatch.setenv("MODEL_NAME", "probe-never-registered")


@pytest.mark.slow  # the first use of the SQLite store migrates it (~20 s here)
def test_a_real_store_says_absent_and_promotion_writes_no_alias(
    unused_model_name, cli, settings
) -> None:
    """The local SQLite store: a definite not-found; a bad version moves no alias."""
    from pipelines.models.registry import MLflowRegistry

    registry = MLflowRegistry(settings)
    name = settings.model_name
    assert name == "probe-never-registered"
    assert registry.alias_version(name, "champion") is None
    with pytest.raises(ModelError, match="has no version 7"):
        registry.require_version(name, "7")
    assert_one_line_error(cli("models", "promote", "--version", "7"), 1, "has no version 7")
    assert registry.alias_version(name, "previous_champion") is None
    assert registry.alias_version(name, "champion") is None
    assert_one_line_error(cli("models", "rollback"), 1, "no @previous_champion")


def test_training_with_mlflow_503_fails_the_run_and_crowns_nothing(cli, warehouse, mlflow_503):
    """The issue's case: an MLflow error while training looks for its version and @champion
    fails the task (exit 4, the run row failed naming MLflow); nothing becomes @champion."""
    import sqlalchemy as sa

    assert_one_line_error(cli("train", "--as-of", "2010-08-20"), MLFLOW_EXIT, "MLflow")
    with warehouse.connect() as conn:
        status, error = conn.execute(sa.text("SELECT status, error FROM pipeline_runs")).one()
    assert status == "failed" and "RegistryUnavailableError: MLflow at" in error
