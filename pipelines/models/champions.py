"""The record of who moved @champion, and when the pipeline noticed a move it did not make.

The registry holds the aliases; the warehouse table ``champion_changes`` holds their history.
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
from dataclasses import dataclass

import sqlalchemy as sa

from pipelines.models import CHALLENGER, PREVIOUS_CHAMPION
from pipelines.models.return_model import Registry

log = logging.getLogger(__name__)
SOURCES = ("bootstrap", "gate", "manual", "rollback", "external")


@dataclass(frozen=True)
class ChampionChange:
    model_name: str
    version: str
    previous_version: str | None
    source: str
    reason: str
    run_id: str


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
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO champion_changes (model_name, version, previous_version, source, "
                "reason, run_id) VALUES (:m, :v, :p, :s, :r, :run)"
            ),
            {"m": model_name, "v": version, "p": previous_version, "s": source, "r": reason,
             "run": run_id},
        )


def history(engine: sa.Engine, model_name: str) -> list[ChampionChange]:
    """Every recorded move of ``model_name``'s @champion, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT model_name, version, previous_version, source, reason, run_id "
                "FROM champion_changes WHERE model_name = :m ORDER BY id"
            ),
            {"m": model_name},
        ).all()
    return [ChampionChange(*row) for row in rows]


def last_recorded(engine: sa.Engine, model_name: str) -> str | None:
    """The champion version the last recorded move set, or None."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT version FROM champion_changes WHERE model_name = :m "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"m": model_name},
        ).scalar()


def observe(
    engine: sa.Engine, registry: Registry, model_name: str, version: str, run_id: str
) -> ChampionChange | None:
    """Record ``version`` as an external move if it is not the last recorded champion.

    Returns the change recorded, or None when the alias is where the pipeline left it (a
    rerun records nothing twice).
    """
    previous = last_recorded(engine, model_name)
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
