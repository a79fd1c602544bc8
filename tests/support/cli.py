"""``mltrade`` run in this process, as a user types it (``pipelines.cli.run``)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    """Run ``mltrade *argv`` through its error boundary; settings and the engine are re-read
    from the environment first, and logging and signal handlers restored after."""
    from pipelines import cli
    from pipelines.config import get_settings
    from pipelines.monitoring.logging import reset_logging
    from pipelines.warehouse.engine import get_engine

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    get_settings.cache_clear()
    get_engine.cache_clear()  # the engine for "the configured URL" is cached per process
    capsys.readouterr()
    try:
        code = cli.run(list(argv))
    finally:
        reset_logging()
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        get_settings.cache_clear()
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
