"""Hostile settings: malformed or unsafe values stop every data command before it touches
anything, with one line naming the setting; the kill switch still works."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.reliability.probes import assert_one_line_error, fingerprint, insert_bars

CONFIG = 2
DATA_COMMAND = ("db", "retention", "--as-of", "2010-08-20")

BAD_SETTINGS = [
    pytest.param({"RISK_AVERSION": "abc"}, "risk_aversion", id="number-as-word"),
    pytest.param({"MAX_WEIGHT": "2"}, "max_weight", id="weight-above-one"),
    pytest.param({"TRADING_MODE": "live"}, "LIVE_TRADING_CONFIRMED", id="live-unconfirmed"),
    pytest.param({"BROKER": "alpaca", "ALPACA_API_KEY": "", "ALPACA_SECRET_KEY": ""},
                 "ALPACA_API_KEY", id="alpaca-without-keys"),
    pytest.param({"DATA_SOURCE": "bloomberg"}, "data_source", id="unknown-source"),
    pytest.param({"LOG_LEVEL": "LOUD"}, "log_level", id="unknown-log-level"),
    pytest.param({"BARS_RETENTION_DAYS": "0"}, "bars_retention_days", id="retention-zero"),
    pytest.param({"RETENTION_AS_OF_SLACK_DAYS": "-1"}, "retention_as_of_slack_days",
                 id="negative-slack"),
    pytest.param({"WAREHOUSE_POOL_SIZE": "many"}, "warehouse_pool_size", id="pool-size-word"),
    pytest.param({"MLFLOW_TRACKING_URI": "http://[::1"}, "MLFLOW_TRACKING_URI",
                 id="mlflow-uri-unclosed-bracket"),
    pytest.param({"PUSHGATEWAY_URL": "http://host:port"}, "PUSHGATEWAY_URL",
                 id="pushgateway-port-word"),
    pytest.param({"CASH_BUFFER": "1"}, "cash_buffer", id="cash-buffer-everything"),
]


@pytest.mark.parametrize(("env", "named"), BAD_SETTINGS)
def test_bad_setting_stops_a_data_command(cli, warehouse, monkeypatch, env, named) -> None:
    insert_bars(warehouse, ["2009-01-05", "2010-08-20"])
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = fingerprint(warehouse)
    assert_one_line_error(cli(*DATA_COMMAND), CONFIG, named)
    assert fingerprint(warehouse) == before


def test_non_postgres_warehouse_url_is_refused(cli, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", "mysql://trader:hunter2-fake-pw@db.example/mltrade")
    line = assert_one_line_error(cli(*DATA_COMMAND), CONFIG, "WAREHOUSE_URL", "PostgreSQL")
    assert "hunter2-fake-pw" not in line


def test_unreachable_warehouse_is_one_line_without_the_password(cli, monkeypatch) -> None:
    monkeypatch.setenv(
        "WAREHOUSE_URL", "postgresql://trader:hunter2-fake-pw@127.0.0.1:1/mltrade?connect_timeout=2"
    )
    outcome = cli(*DATA_COMMAND)
    line = assert_one_line_error(outcome, 3, "cannot reach the warehouse", "WAREHOUSE_URL")
    assert "hunter2-fake-pw" not in outcome.err + outcome.out
    assert line


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"RISK_AVERSION": "abc"}, id="number-as-word"),
        pytest.param({"TRADING_MODE": "live"}, id="live-unconfirmed"),
        pytest.param({"MAX_WEIGHT": "oops", "BROKER": "carrier-pigeon"}, id="two-broken"),
    ],
)
def test_kill_switch_works_with_a_broken_configuration(cli, warehouse, monkeypatch, env) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    on = cli("kill-switch", "on", "--reason", "incident 42")
    assert on.code == 0, on.err
    assert "kill switch is ON (incident 42" in on.out
    status = cli("kill-switch", "status")
    assert status.code == 0 and "ON" in status.out
    check = cli("check")
    assert check.code == 1  # the settings check fails ...
    assert "kill switch: ON" in check.out  # ... and the kill switch is still reported
    off = cli("kill-switch", "off", "--reason", "resolved")
    assert off.code == 0 and "kill switch is off" in off.out
    with warehouse.connect() as conn:
        assert conn.execute(
            sa.text("SELECT enabled, reason FROM controls WHERE name = 'kill_switch'")
        ).one() == (False, "resolved")


def test_kill_switch_state_shows_in_check_and_metrics(cli, warehouse) -> None:
    from prometheus_client import generate_latest

    from pipelines.monitoring.metrics import WarehouseCollector

    assert cli("kill-switch", "on", "--reason", "drill").code == 0
    check = cli("check")
    assert "kill switch: ON" in check.out and "drill" in check.out
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(WarehouseCollector(warehouse))
    assert b"mltrade_kill_switch_engaged 1.0" in generate_latest(registry)
    assert cli("kill-switch", "off").code == 0
    assert "kill switch: off" in cli("check").out


def test_db_url_masks_a_query_password_unless_asked(cli, monkeypatch, warehouse_url) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url + "&password=qu3ry-fake-pw")
    masked = cli("db", "url")
    assert masked.code == 0, masked.err
    assert "qu3ry-fake-pw" not in masked.out and "password=***" in masked.out
    shown = cli("db", "url", "--show-password")
    assert shown.code == 0 and "qu3ry-fake-pw" in shown.out
