"""The champion changes repository: ``champion_changes``, who moved a model's @champion.

One row per move, appended and never changed: the new and the previous version (None when
none was recorded), its source (``bootstrap``, ``gate``, ``manual``, ``rollback`` or
``external``), why, and the run that made or saw it. When to record a move is decided in
:mod:`pipelines.models.champions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class ChampionChange:
    model_name: str
    version: str
    previous_version: str | None
    source: str
    reason: str
    run_id: str


def append(engine: sa.Engine, change: ChampionChange) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO champion_changes (model_name, version, previous_version, source, "
                "reason, run_id) VALUES (:m, :v, :p, :s, :r, :run)"
            ),
            {"m": change.model_name, "v": change.version, "p": change.previous_version,
             "s": change.source, "r": change.reason, "run": change.run_id},
        )  # fmt: skip


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


def last_version(engine: sa.Engine, model_name: str) -> str | None:
    """The champion version the last recorded move set, or None."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT version FROM champion_changes WHERE model_name = :m "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"m": model_name},
        ).scalar()
