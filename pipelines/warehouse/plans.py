"""The plans repository: reading and writing ``plans``, ``target_weights`` and ``plan_stress``.

A plan is keyed by (strategy, session_date, plan_version): :class:`PlanRef`, and :data:`KEY`
selects its rows in any table keyed by it. Its status moves only through
:mod:`pipelines.portfolio.plan_state`, which decides the allowed moves and runs the guarded
statement here (:func:`move_status`), and the orders frozen for it live with the orders
(:mod:`pipelines.warehouse.orders`); the functions here read it, write a new plan, move its
status, and record what the gate decided and when its orders were frozen. Those taking a
``conn`` run on the caller's transaction (they are parts of a larger atomic change); those
taking an ``engine`` are whole reads or writes. Weights are fractions of equity; stress
losses are positive fractions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

#: The key condition of every table keyed by a plan, with :meth:`PlanRef.params` as its values.
KEY = "strategy = :s AND session_date = :d AND plan_version = :v"


@dataclass(frozen=True)
class PlanRef:
    strategy: str
    session_date: date
    plan_version: int

    def params(self) -> dict[str, Any]:
        return {"s": self.strategy, "d": self.session_date, "v": self.plan_version}


def latest(engine: sa.Engine, strategy: str, session_date: date) -> PlanRef | None:
    """The session's highest plan version, or None when it has no plan."""
    with engine.connect() as conn:
        version = conn.execute(
            sa.text(
                "SELECT max(plan_version) FROM plans WHERE strategy = :s AND session_date = :d"
            ),
            {"s": strategy, "d": session_date},
        ).scalar()
    return None if version is None else PlanRef(strategy, session_date, version)


def newest(engine: sa.Engine, strategy: str) -> tuple[PlanRef, str] | None:
    """The strategy's newest plan (latest session, highest version) and its status."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT session_date, plan_version, status FROM plans WHERE strategy = :s "
                "ORDER BY session_date DESC, plan_version DESC LIMIT 1"
            ),
            {"s": strategy},
        ).one_or_none()
    return None if row is None else (PlanRef(strategy, row.session_date, row.plan_version),
                                     row.status)  # fmt: skip


def latest_before(engine: sa.Engine, strategy: str, before: date) -> PlanRef | None:
    """The latest version of the last session before ``before`` that has a plan, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT session_date, max(plan_version) AS v FROM plans WHERE strategy = :s "
                "AND session_date < :d GROUP BY session_date ORDER BY session_date DESC LIMIT 1"
            ),
            {"s": strategy, "d": before},
        ).one_or_none()
    return None if row is None else PlanRef(strategy, row.session_date, int(row.v))


def last_submitted(engine: sa.Engine, strategy: str, on_or_before: date) -> PlanRef | None:
    """The latest version of the last session on or before ``on_or_before`` whose plan was
    submitted (the targets the book was last traded to), or None."""
    with engine.connect() as conn:  # no newer version follows a submitted one (plan_state)
        row = conn.execute(
            sa.text(
                "SELECT session_date, plan_version FROM plans WHERE strategy = :s "
                "AND session_date <= :d AND status = 'submitted' "
                "ORDER BY session_date DESC, plan_version DESC LIMIT 1"
            ),
            {"s": strategy, "d": on_or_before},
        ).one_or_none()
    return None if row is None else PlanRef(strategy, row.session_date, row.plan_version)


def decision(engine: sa.Engine, plan: PlanRef) -> tuple[str, dict[str, Any] | None]:
    """The plan's status and the risk report the gate stored (None before any decision)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT status, risk_report FROM plans WHERE {KEY}"), plan.params()
        ).one()
    return row.status, row.risk_report


def for_submission(engine: sa.Engine, plan: PlanRef) -> sa.Row | None:
    """The plan's status, model_name, model_version and orders_frozen_at (None until its orders
    are frozen), or None when the plan does not exist."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                f"SELECT status, model_name, model_version, orders_frozen_at FROM plans WHERE {KEY}"
            ),
            plan.params(),
        ).one_or_none()


def target_weights(engine: sa.Engine, plan: PlanRef) -> pd.Series:
    """The plan's weights by symbol (sorted)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT symbol, weight FROM target_weights WHERE {KEY} ORDER BY symbol"),
            plan.params(),
        ).all()
    return pd.Series({symbol: weight for symbol, weight in rows}, name="weight", dtype=float)


def insert(
    conn: sa.Connection,
    plan: PlanRef,
    weights: pd.Series,
    model_name: str,
    model_version: str,
    run_id: str,
) -> bool:
    """Write ``plan`` as proposed with its weights; False (nothing written) when that version
    exists already (another run's optimization committed first)."""
    inserted = conn.execute(
        sa.text(
            "INSERT INTO plans (strategy, session_date, plan_version, model_name, "
            "model_version, status, risk_report, run_id) VALUES (:s, :d, :v, :m, :mv, "
            "'proposed', CAST(:r AS jsonb), :run) ON CONFLICT DO NOTHING"
        ),
        {**plan.params(), "m": model_name, "mv": model_version, "r": json.dumps(None),
         "run": run_id},
    ).rowcount  # fmt: skip
    if not inserted:
        return False
    _insert_weights(conn, plan, weights)
    return True


def _insert_weights(conn: sa.Connection, plan: PlanRef, weights: pd.Series) -> None:
    if weights.empty:  # all cash: executemany with no rows is an error, not a no-op
        return
    conn.execute(
        sa.text(
            "INSERT INTO target_weights (strategy, session_date, plan_version, symbol, "
            "weight) VALUES (:s, :d, :v, :sym, :w)"
        ),
        [{**plan.params(), "sym": symbol, "w": float(w)} for symbol, w in weights.items()],
    )


def locked_status(conn: sa.Connection, plan: PlanRef) -> str:
    """The plan's status, its row locked until the caller's transaction ends."""
    return str(
        conn.execute(
            sa.text(f"SELECT status FROM plans WHERE {KEY} FOR UPDATE"), plan.params()
        ).scalar_one()
    )


def move_status(
    conn: sa.Connection, plan: PlanRef, expected: list[str], new: str, columns: dict[str, Any]
) -> bool:
    """Set the plan's status to ``new`` (and its ``columns``) if it is in one of ``expected``;
    False (nothing changed) when it is not, or the plan does not exist."""
    sets = ", ".join(["status = :new"] + [f"{c} = :{c}" for c in columns])
    moved = conn.execute(
        sa.text(f"UPDATE plans SET {sets} WHERE {KEY} AND status = ANY(:exp)"),
        {**plan.params(), **columns, "new": new, "exp": expected},
    ).rowcount
    return moved == 1


def status(conn: sa.Connection, plan: PlanRef) -> str | None:
    """The plan's status, or None when it does not exist."""
    return conn.execute(
        sa.text(f"SELECT status FROM plans WHERE {KEY}"), plan.params()
    ).scalar_one_or_none()


def set_weights(conn: sa.Connection, plan: PlanRef, weights: pd.Series) -> None:
    """Replace the weights of the plan's symbols in ``weights`` (e.g. scaled by the gate)."""
    if weights.empty:
        return
    conn.execute(
        sa.text(f"UPDATE target_weights SET weight = :w WHERE {KEY} AND symbol = :sym"),
        [{**plan.params(), "sym": symbol, "w": float(np.float64(w))}
         for symbol, w in weights.items()],
    )  # fmt: skip


def mark_orders_frozen(conn: sa.Connection, plan: PlanRef) -> None:
    conn.execute(sa.text(f"UPDATE plans SET orders_frozen_at = now() WHERE {KEY}"), plan.params())


def set_risk_report(conn: sa.Connection, plan: PlanRef, report: dict[str, Any]) -> None:
    conn.execute(
        sa.text(f"UPDATE plans SET risk_report = CAST(:r AS jsonb) WHERE {KEY}"),
        {"r": json.dumps(report), **plan.params()},
    )


def replace_stress(engine: sa.Engine, plan: PlanRef, rows: list[dict[str, Any]]) -> None:
    """Replace the plan's stress rows (keys: scenario, kind, start_date, end_date, covered,
    loss, detail) in one transaction."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM plan_stress WHERE {KEY}"), plan.params())
        if rows:
            conn.execute(
                sa.text(
                    "INSERT INTO plan_stress (strategy, session_date, plan_version, scenario, "
                    "kind, start_date, end_date, covered, loss, detail) VALUES (:s, :d, :v, "
                    ":scenario, :kind, :start_date, :end_date, :covered, :loss, "
                    "CAST(:detail AS jsonb))"
                ),
                [{**plan.params(), **row, "detail": json.dumps(row["detail"])} for row in rows],
            )


def stress(engine: sa.Engine, plan: PlanRef) -> list[sa.Row]:
    """The plan's stress rows, by kind then scenario."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT scenario, kind, covered, loss, start_date, end_date FROM plan_stress "
                    f"WHERE {KEY} ORDER BY kind, scenario"
                ),
                plan.params(),
            ).all()
        )


def count_by_status(conn: sa.Connection) -> list[sa.Row]:
    """``(status, count)`` of every plan version."""
    return list(conn.execute(sa.text("SELECT status, count(*) FROM plans GROUP BY 1")).all())
