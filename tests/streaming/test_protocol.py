"""The stream protocol's error messages reach the log as one clear line each, and the local
server speaks JSON frames to a client that does not ask for msgpack."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
from websockets.sync.client import connect

from tests.support.alpaca_stream_server import AlpacaStreamServer, sample_day
from tests.support.streaming import ServiceThread, stream_settings, wait_for


def _errors(caplog: pytest.LogCaptureFixture, code: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "event=stream_protocol_error" in r.getMessage() and f"code={code} " in r.getMessage()
    ]


def test_json_frames_for_a_plain_client() -> None:
    day = sample_day(["IBM"], date(2010, 3, 1))[:2]
    with AlpacaStreamServer() as server, connect(server.data_url) as ws:
        assert json.loads(ws.recv()) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "auth", "key": "test-key", "secret": "test-secret"}))
        assert json.loads(ws.recv()) == [{"T": "success", "msg": "authenticated"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["IBM"]}))
        assert json.loads(ws.recv())[0]["bars"] == ["IBM"]
        server.publish(day)
        bars = json.loads(ws.recv())
    assert [b["t"] for b in bars] == ["2010-03-01T14:30:00Z", "2010-03-01T14:31:00Z"]
    assert bars[0]["o"] == day[0]["o"] and bars[0]["S"] == "IBM"


def test_auth_failure_connection_limit_invalid_subscription_slow_client(
    redis_url: str, bus_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with AlpacaStreamServer(slow_client_frames=2) as server:
        wrong = stream_settings(redis_url, bus_prefix, server).model_copy(
            update={"universe": ["IBM", "bad$"]}
        )
        # auth failure: wrong secret
        bad_key = wrong.model_copy(update={"alpaca_secret_key": wrong.alpaca_api_key})
        with ServiceThread(bad_key, None, role="clients"):
            wait_for(lambda: _errors(caplog, 402), "the auth failure line")
        # connection limit: another session holds the only connection
        with connect(server.data_url) as other:
            other.recv()
            other.send(json.dumps({"action": "auth", "key": "test-key", "secret": "test-secret"}))
            other.recv()
            with ServiceThread(wrong, None, role="clients"):
                wait_for(lambda: _errors(caplog, 406), "the connection-limit line")
        # invalid subscription ("bad$" is no ticker): refused, the connection stays up
        with ServiceThread(wrong, None, role="clients") as service:
            wait_for(lambda: _errors(caplog, 410), "the invalid-subscription line")
            invalid = service.metrics.protocol_errors.labels("410")._value.get()
        # a slow client: the server's queue for it overflows and it is cut off
        good = wrong.model_copy(update={"universe": ["IBM"]})
        with ServiceThread(good, None, role="clients"):
            wait_for(server.subscribers, "the client to subscribe")
            server.publish(sample_day(["IBM"], date(2010, 3, 1)), frame_size=1)
            wait_for(lambda: _errors(caplog, 407), "the slow-client line")
    assert "ALPACA_API_KEY" in _errors(caplog, 402)[0]
    assert "connection limit exceeded" in _errors(caplog, 406)[0]
    assert "UNIVERSE" in _errors(caplog, 410)[0]
    assert invalid >= 1 and 407 in server.errors
