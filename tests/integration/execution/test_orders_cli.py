"""`mltrade orders dead-letter` and `mltrade orders retry` against the local Alpaca server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import get_settings
from pipelines.execution.brokers.alpaca import AlpacaBroker
from pipelines.execution.orders import submit_plan
from tests.support.alpaca_trading_server import Fault
from tests.support.trading import alpaca_settings, ledger, make_plan

runner = CliRunner()


def test_dead_letter_list_and_retry_commands(warehouse, alpaca_server, monkeypatch) -> None:
    for name, value in {
        "BROKER": "alpaca",
        "ALPACA_API_KEY": alpaca_server.api_key,
        "ALPACA_SECRET_KEY": alpaca_server.secret_key,
        "ALPACA_BASE_URL": alpaca_server.url,
        "BROKER_BACKOFF_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        settings = alpaca_settings(alpaca_server)
        plan = make_plan(warehouse, {"AAPL": 0.1, "KO": 0.1})
        alpaca_server.inject(
            Fault(403, body={"code": 40310000, "message": "insufficient buying power"})
        )
        summary = submit_plan(warehouse, settings, plan, AlpacaBroker(settings), "cli")
        assert summary.dead_lettered == 1 and summary.sent == 1

        listed = runner.invoke(app, ["orders", "dead-letter"])
        assert listed.exit_code == 0, listed.output
        (letter,) = json.loads(listed.output)
        assert letter["http_status"] == 403 and "insufficient buying power" in letter["error"]
        assert letter["symbol"] == "AAPL" and letter["status"] == "dead_letter"

        get_settings.cache_clear()
        retried = runner.invoke(app, ["orders", "retry", letter["client_order_id"]])
        assert retried.exit_code == 0, retried.output
        assert json.loads(retried.output)["outcome"] == "sent"
        assert json.loads(runner.invoke(app, ["orders", "dead-letter"]).output) == []
        assert alpaca_server.created[letter["client_order_id"]] == 1
        assert {r.status for r in ledger(warehouse, plan).values()} == {"accepted"}
        again = runner.invoke(app, ["orders", "retry", letter["client_order_id"]])
        assert again.exit_code != 0 and "not dead-lettered" in str(again.exception)
    finally:  # the CLI cached settings with BROKER=alpaca: later tests must not see them
        monkeypatch.undo()
        get_settings.cache_clear()
