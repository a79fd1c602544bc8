"""The record of who moved @champion, and when the pipeline noticed a move it did not make.

The registry holds the aliases; the warehouse table ``champion_changes`` holds their history
(:mod:`pipelines.warehouse.champion_changes`).
The pipeline records its own moves (``bootstrap``, ``gate``, ``manual``, ``rollback``). A
user may also promote or roll back by setting ``@champion`` in the MLflow UI: the next
rebalance's predict step calls :func:`observe`, which compares the alias with the last
recorded champion and, when they differ, records the move as ``external``, logs a warning,
and keeps the other aliases consistent as a promotion would: ``@previous_champion`` points
at the champion it replaced (so ``mltrade models rollback`` undoes the UI's move) and a
``@challenger`` on the new champion is removed (it no longer waits for the gate).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from pipelines.models import CHALLENGER, PREVIOUS_CHAMPION
from pipelines.models.return_model import Registry
from pipelines.warehouse import champion_changes
from pipelines.warehouse.champion_changes import ChampionChange

log = logging.getLogger(__name__)
SOURCES = ("bootstrap", "gate", "manual", "rollback", "external")


def record(
    engine: sa.Engine,
    model_name: str,
    version: str,
    previous_version: str | None,
    source: str,
    run_id: str,
    reason: str,
) -> None:
    """Append one move of @champion to ``champion_changes``."""
    if source not in SOURCES:
        raise ValueError(f"champion change source {source!r} is not one of {SOURCES}")
    champion_changes.append(
        engine, ChampionChange(model_name, version, previous_version, source, reason, run_id)
    )


def observe(
    engine: sa.Engine, registry: Registry, model_name: str, version: str, run_id: str
) -> ChampionChange | None:
    """Record ``version`` as an external move if it is not the last recorded champion.

    Returns the change recorded, or None when the alias is where the pipeline left it (a
    rerun records nothing twice).
    """
    previous = champion_changes.last_version(engine, model_name)
    if previous == version:
        return None
    if previous is None:
        reason = f"@champion v{version} seen with no earlier record (store older than the record)"
    else:
        reason = (
            f"@champion moved from v{previous} to v{version} outside the pipeline "
            "(MLflow UI or API); picked up by this run"
        )
        if registry.alias_version(model_name, PREVIOUS_CHAMPION) != previous:
            registry.set_alias(model_name, PREVIOUS_CHAMPION, previous)
    if registry.alias_version(model_name, CHALLENGER) == version:
        registry.remove_alias(model_name, CHALLENGER)
    change = ChampionChange(model_name, version, previous, "external", reason, run_id)
    record(engine, model_name, version, previous, "external", run_id, reason)
    log.warning("champion change model=%s from=%s to=%s source=external run_id=%s",
                model_name, previous, version, run_id)
    return change
