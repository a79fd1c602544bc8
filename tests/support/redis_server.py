"""A private Redis for the streaming tests and benchmarks: a real ``redis-server`` with AOF on a
free loopback port and a temporary directory, restartable (its data survives a restart, as
the compose stack's Redis does). When no ``redis-server`` binary exists, the machine's Redis
at 127.0.0.1:6379 is used (shared with Celery: callers use their own stream prefix)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

SHARED_URL = "redis://127.0.0.1:6379/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, fsync: str = "always") -> None:
        self.fsync = fsync  # AOF appendfsync: always (tests) | everysec (compose, benchmarks)
        self.binary = shutil.which("redis-server")
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mltrade-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert self.binary
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(200):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        """Stop (SIGTERM, the AOF is kept) and start again on the same port and data."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_or_none() -> str | None:
    try:
        redis.Redis.from_url(SHARED_URL, socket_connect_timeout=1).ping()
        return SHARED_URL
    except redis.RedisError:
        return None
