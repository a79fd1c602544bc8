"""Destructive commands: retention refuses an as-of past the data, says what it drops first,
and ``--dry-run`` drops nothing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.reliability.probes import assert_one_line_error, fingerprint, insert_bars

DAYS = ["2008-06-02", "2009-01-05", "2009-08-21", "2010-08-20"]


def _announced(text: str, verb: str) -> tuple[int, list[str]]:
    """``(rows, partitions)`` of the line ``<verb> N partition(s) of bars (R rows): a, b``.

    Earlier tests of the session may have left empty partitions of older years: they are
    listed too (nothing is lost by dropping them), so only the ones holding rows are fixed."""
    found = re.search(rf"{verb} \d+ partition\(s\) of bars \((\d+) rows\): ([\w, ]+)", text)
    assert found, text
    return int(found[1]), found[2].split(", ")


def _bars(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM bars")).scalar_one())


@pytest.mark.parametrize(
    "as_of",
    [
        pytest.param("2099-01-01", id="far-future"),
        pytest.param("2010-08-28", id="one-day-past-the-slack"),
        pytest.param("2011-08-20", id="a-year-late"),
    ],
)
def test_retention_refuses_an_as_of_beyond_the_newest_bar(cli, warehouse, monkeypatch, as_of):
    insert_bars(warehouse, DAYS)
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    before = fingerprint(warehouse)
    assert_one_line_error(
        cli("db", "retention", "--as-of", as_of), 3, "refusing retention", "2010-08-20",
        "nothing was dropped",
    )
    assert fingerprint(warehouse) == before  # not even a pipeline_runs row


def test_dry_run_says_what_would_go_and_drops_nothing(cli, warehouse, monkeypatch) -> None:
    insert_bars(warehouse, DAYS)
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    before = fingerprint(warehouse)
    outcome = cli("db", "retention", "--as-of", "2010-08-20", "--dry-run")
    assert outcome.code == 0, outcome.err
    rows, partitions = _announced(outcome.out, "would drop")
    assert rows == 3 and {"bars_y2008", "bars_y2009"} <= set(partitions)
    assert "bars_y2010" not in partitions
    assert fingerprint(warehouse) == before


def test_retention_within_the_slack_says_how_much_then_drops(cli, warehouse, monkeypatch):
    insert_bars(warehouse, DAYS)
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    outcome = cli("db", "retention", "--as-of", "2010-08-27")  # newest bar + 7 days slack
    assert outcome.code == 0, outcome.err
    rows, partitions = _announced(outcome.out, "dropping")
    assert rows == 3 and {"bars_y2008", "bars_y2009"} <= set(partitions)
    assert outcome.out.index("dropping") < outcome.out.index('"dropped"')  # announced first
    assert _bars(warehouse) == 1


def test_slack_is_a_setting(cli, warehouse, monkeypatch) -> None:
    insert_bars(warehouse, DAYS)
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    monkeypatch.setenv("RETENTION_AS_OF_SLACK_DAYS", "0")
    assert_one_line_error(cli("db", "retention", "--as-of", "2010-08-21"), 3, "refusing")
    assert _bars(warehouse) == 4


def test_retention_unset_keeps_everything_whatever_the_as_of(cli, warehouse) -> None:
    insert_bars(warehouse, DAYS)
    outcome = cli("db", "retention", "--as-of", "2099-01-01")
    assert outcome.code == 0, outcome.err
    assert _bars(warehouse) == 4


def test_retention_on_an_empty_table_has_nothing_to_lose(cli, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("BARS_RETENTION_DAYS", "30")
    outcome = cli("db", "retention", "--as-of", "2099-01-01", "--dry-run")
    assert outcome.code == 0, outcome.err
    assert "partition(s) of bars (0 rows)" in outcome.out  # empty partitions may remain
