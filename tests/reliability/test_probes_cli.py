"""Hostile command lines: each one exits non-zero with one line naming the problem, and the
warehouse is left exactly as it was (every data table's fingerprint unchanged)."""

from __future__ import annotations

import pytest

from tests.reliability.probes import assert_one_line_error, fingerprint

USAGE = 2

BAD_ARGUMENTS = [
    pytest.param(("nosuch",), "no such command", id="unknown-command"),
    pytest.param(("db", "nosuch"), "no such command", id="unknown-db-command"),
    pytest.param(("db", "retention"), "--as-of", id="retention-without-as-of"),
    pytest.param(("db", "retention", "--as-of", "2099-13-01"), "--as-of", id="retention-month-13"),
    pytest.param(("db", "retention", "--as-of", ""), "--as-of", id="retention-empty-date"),
    pytest.param(("db", "retention", "--as-of", "yesterday"), "--as-of", id="retention-word"),
    pytest.param(("rebalance", "--date", "sat"), "--date", id="rebalance-word-date"),
    pytest.param(("rebalance", "--date", "2010-02-30"), "--date", id="rebalance-feb-30"),
    pytest.param(("rebalance",), "--date", id="rebalance-without-date"),
    pytest.param(("kill-switch", "bogus"), "on, off or status", id="kill-switch-bad-action"),
    pytest.param(("kill-switch",), "action", id="kill-switch-no-action"),
    pytest.param(("ingest",), "--start and --end", id="ingest-without-dates"),
    pytest.param(("ingest", "--start", "2010-01-04", "--end", "01/08/2010"), "--end",
                 id="ingest-us-date"),
    pytest.param(("backtest", "--strategy", "momentum", "--start", "2010-01-04", "--end",
                  "2010-06-01", "--windows", "many"), "--windows", id="backtest-windows-word"),
    pytest.param(("metrics", "serve", "--port", "http"), "--port", id="metrics-port-word"),
    pytest.param(("train", "--as-of", "10/08/2010"), "--as-of", id="train-us-date"),
    pytest.param(("features", "--start", "2010-01-04", "--end", "soon"), "--end",
                 id="features-bad-end"),
    pytest.param(("summary", "--as-of", "2010-08-32"), "--as-of", id="summary-day-32"),
    pytest.param(("risk-report", "--date", "16.08.2010"), "--date", id="risk-report-dotted-date"),
    pytest.param(("orders", "retry"), "client_order_id", id="retry-without-id"),
    pytest.param(("db", "url", "--database"), "--database", id="db-url-option-without-value"),
]


@pytest.mark.parametrize(("argv", "named"), BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_and_change_nothing(cli, warehouse, argv, named) -> None:
    before = fingerprint(warehouse)
    outcome = cli(*argv)
    assert_one_line_error(outcome, USAGE, named)
    assert fingerprint(warehouse) == before


def test_bare_command_prints_help_and_fails(cli) -> None:
    outcome = cli()
    assert outcome.code == USAGE
    assert "Usage" in outcome.err + outcome.out


@pytest.mark.parametrize(
    ("version", "named"),
    [("abc", "positive whole number"), ("0", "positive whole number"), ("3.5", "whole number")],
)
def test_promote_refuses_a_malformed_version_before_touching_mlflow(
    cli, warehouse, version, named
) -> None:
    before = fingerprint(warehouse)
    assert_one_line_error(cli("models", "promote", "--version", version), 1, named)
    assert fingerprint(warehouse) == before


def test_debug_prints_the_traceback_as_well(cli) -> None:
    outcome = cli("--debug", "models", "promote", "--version", "abc")
    assert outcome.code == 1
    assert "Traceback" in outcome.err
    assert outcome.err.strip().splitlines()[-1].startswith("error: ")
