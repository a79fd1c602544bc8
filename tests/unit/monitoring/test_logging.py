"""Redaction and rendering of the structured logs, without a warehouse."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr

from pipelines.config import Settings
from pipelines.monitoring.logging import (
    REDACTED,
    Redactor,
    bound_run,
    configure_logging,
    get_logger,
    reset_logging,
    secret_values,
)

KEY, SECRET = "AKFAKEKEY0000000001", "fake/Secret+Value=0123456789"


@pytest.fixture(autouse=True)
def _reset():
    yield
    reset_logging()


def _settings(**extra) -> Settings:
    return Settings(
        alpaca_api_key=SecretStr(KEY),
        alpaca_secret_key=SecretStr(SECRET),
        warehouse_url="postgresql+psycopg://mltrade:pg-fake%40word@db:5432/mltrade",
        **extra,
    )


def test_secret_values_cover_secretstr_url_passwords_and_secret_env_names() -> None:
    values = secret_values(_settings(), environ={"PAGERDUTY_ROUTING_KEY": "pd-routing-1234",
                                                 "PATH": "/usr/bin", "X_TOKEN": "abc"})
    assert KEY in values and SECRET in values
    assert "pg-fake%40word" in values and "pg-fake@word" in values  # raw and decoded
    assert "pd-routing-1234" in values
    assert "/usr/bin" not in values and "abc" not in values  # not secret; too short
    assert values == sorted(values, key=len, reverse=True)


def test_redactor_reaches_nested_values_and_any_url_password() -> None:
    redact = Redactor([KEY, SECRET])
    event = redact(None, "info", {
        "event": f"auth with {KEY}",
        "nested": {"list": [SECRET, 3, None], "url": "https://u:other-pw@example.com/x"},
        "obj": ValueError(f"bad {SECRET}"),
    })
    text = json.dumps(event, default=str)
    assert KEY not in text and SECRET not in text and "other-pw" not in text
    assert event["event"] == f"auth with {REDACTED}"
    assert event["nested"]["url"] == f"https://u:{REDACTED}@example.com/x"
    assert event["nested"]["list"][1:] == [3, None]


def test_json_lines_carry_the_run_identity_and_never_the_secrets(tmp_path) -> None:
    out = io.StringIO()
    log_file = tmp_path / "logs" / "mltrade.log"
    configure_logging(_settings(log_format="json", log_file=str(log_file)), stream=out)
    with bound_run(run_id="run-42", stage="ingest", session_date="2010-08-16"):
        get_logger("pipelines.test").info("structlog line", key=KEY)
        logging.getLogger("pipelines.test").warning("stdlib line %s", SECRET)
        try:
            raise RuntimeError(f"broker said no to {KEY}")
        except RuntimeError:
            logging.getLogger("pipelines.test").exception("with a traceback")
    logging.getLogger("pipelines.test").info("outside the run")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines][:2] == ["structlog line", f"stdlib line {REDACTED}"]
    for line in lines[:3]:
        assert (line["run_id"], line["stage"], line["session_date"]) == (
            "run-42", "ingest", "2010-08-16")
        assert line["level"] in {"info", "warning", "error"} and line["timestamp"]
    assert "run_id" not in lines[3]
    assert "RuntimeError" in lines[2]["exception"]
    everything = out.getvalue() + log_file.read_text()
    assert KEY not in everything and SECRET not in everything
    assert len(log_file.read_text().splitlines()) == 4  # the file gets the same lines


def test_console_format_is_readable_key_value() -> None:
    out = io.StringIO()
    configure_logging(_settings(), stream=out)
    with bound_run(run_id="r1", stage="features"):
        get_logger("pipelines.test").info("stage started", rows=3)
    line = out.getvalue()
    assert "stage started" in line and "run_id=r1" in line and "rows=3" in line
    assert not line.lstrip().startswith("{")


def test_file_output_rotates(tmp_path) -> None:
    log_file = tmp_path / "mltrade.log"
    configure_logging(
        _settings(log_file=str(log_file), log_file_max_bytes=2048, log_file_backups=2),
        stream=io.StringIO(),
    )
    for i in range(200):
        logging.getLogger("pipelines.test").info("line %d %s", i, "x" * 40)
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["mltrade.log", "mltrade.log.1", "mltrade.log.2"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())


def test_any_logged_object_and_every_handler_see_the_redacted_record(caplog) -> None:
    out = io.StringIO()
    configure_logging(_settings(), stream=out)
    caplog.set_level(logging.INFO)
    logging.getLogger("some.library").error(RuntimeError(f"token {KEY} refused"))
    assert f"token {REDACTED} refused" in out.getvalue()
    assert caplog.records[-1].getMessage() == f"token {REDACTED} refused"  # pytest's handler
    assert KEY not in caplog.text


def test_reset_restores_the_structlog_setup_it_replaced() -> None:
    import structlog

    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    before = structlog.get_config()["processors"]
    configure_logging(_settings(), stream=io.StringIO())
    assert structlog.get_config()["processors"] != before
    reset_logging()
    assert structlog.get_config()["processors"] == before
    structlog.reset_defaults()


def test_every_cli_command_binds_its_run_id() -> None:
    import os

    import structlog
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["check"])
    assert "settings" in result.output
    assert structlog.contextvars.get_contextvars()["run_id"] == f"cli__check__{os.getpid()}"
