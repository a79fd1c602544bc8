"""The probe suite's fixtures: ``cli`` runs ``mltrade`` in this process (see probes.py)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from pipelines.config import get_settings
from tests.reliability.probes import Outcome


@pytest.fixture
def cli(
    warehouse: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Outcome]]:
    """``cli("db", "retention", "--as-of", "…")`` -> :class:`Outcome`, run in this process."""
    from pipelines import cli as cli_module
    from pipelines.monitoring.logging import reset_logging

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    def run(*argv: str) -> Outcome:
        from pipelines.warehouse.engine import get_engine

        get_settings.cache_clear()
        get_engine.cache_clear()  # the engine for "the configured URL" is cached per process
        capsys.readouterr()
        try:
            code = cli_module.run(list(argv))
        finally:
            reset_logging()
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
            get_settings.cache_clear()
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    yield run


