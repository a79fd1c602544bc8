"""The probe suite's fixtures: ``cli`` runs ``mltrade`` in this process (see probes.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tests.reliability.probes import Outcome
from tests.support.cli import run_cli


@pytest.fixture
def cli(
    warehouse: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Outcome]]:
    """``cli("db", "retention", "--as-of", "…")`` -> :class:`Outcome`, run in this process."""
    yield functools.partial(run_cli, capsys)


