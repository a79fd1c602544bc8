"""The order ledger repository: ``orders``, ``order_events``, ``fills``, ``plan_orders`` and
``dead_letter_orders``.

An order is keyed by its ``client_order_id``; the orders of a plan (and those frozen with it
in ``plan_orders``) are selected by :data:`pipelines.warehouse.plans.KEY`. Which moves between
statuses are allowed is decided by the state machine (:mod:`pipelines.execution.ledger`); the
statuses a statement needs are given by its caller. Those taking a ``conn`` run on the
caller's transaction (they are parts of a larger atomic change, and the rows they lock stay
locked until it ends); those taking an ``engine`` are whole reads or writes. Quantities are
shares, prices USD.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.engine import read_frame
from pipelines.warehouse.plans import KEY, PlanRef


class Line(Protocol):
    """An order line of a plan (an ``OrderIntent`` is one)."""

    @property
    def client_order_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def qty(self) -> Decimal: ...


def locked_status(conn: sa.Connection, coid: str) -> str | None:
    """The order's status (None when it is not in the ledger), its row locked until the
    caller's transaction ends."""
    return conn.execute(
        sa.text("SELECT status FROM orders WHERE client_order_id = :c FOR UPDATE"),
        {"c": coid},
    ).scalar_one_or_none()


def update(
    conn: sa.Connection,
    coid: str,
    status: str | None,
    columns: dict[str, Any],
    event_of: tuple[str, dict[str, Any] | None] | None = None,
) -> None:
    """Update the order's columns (and status) and, with ``event_of`` = (source, detail),
    record the event in the same statement (one round trip)."""
    sets = ["updated_at = now()"] + [f"{name} = :{name}" for name in columns]
    params = {"c": coid, **columns}
    if status is not None:
        sets.append("status = :status")
        params["status"] = status
    sql = f"UPDATE orders SET {', '.join(sets)} WHERE client_order_id = :c"
    if event_of is not None:
        sql = (
            f"WITH u AS ({sql} RETURNING client_order_id, status) "
            "INSERT INTO order_events (client_order_id, status, source, detail) "
            "SELECT client_order_id, status, :src, CAST(:d AS jsonb) FROM u"
        )
        params["src"] = event_of[0]
        params["d"] = json.dumps(event_of[1], default=str)
    conn.execute(sa.text(sql), params)


def lock_many(conn: sa.Connection, coids: Sequence[str]) -> list[sa.Row]:
    """The orders' client_order_id, status, qty and filled_qty, their rows locked in
    ``client_order_id`` order (two lockers of overlapping sets wait instead of deadlocking)."""
    return list(
        conn.execute(
            sa.text(
                "SELECT client_order_id, status, qty, filled_qty FROM orders "
                "WHERE client_order_id = ANY(CAST(:ids AS text[])) "
                "ORDER BY client_order_id FOR UPDATE"
            ),
            {"ids": list(coids)},
        )
    )


def fill_totals(conn: sa.Connection, coids: Sequence[str]) -> list[sa.Row]:
    """(client_order_id, shares, USD value, rows) of each order's fills; orders without fills
    are left out."""
    return list(
        conn.execute(
            sa.text(
                "SELECT client_order_id, sum(qty), sum(qty * price), count(*) FROM fills "
                "WHERE client_order_id = ANY(CAST(:ids AS text[])) GROUP BY client_order_id"
            ),
            {"ids": list(coids)},
        )
    )


# One statement for a batch's writes: the orders' new columns, their fills (a fill id already
# there is a redelivery: skipped) and one event per applied report, in the batch's order. The
# rows travel as three JSON documents: one parameter each, not one array per column (psycopg
# escapes every element of a text array in Python, a quarter of the batch's time).
_WRITE = sa.text(
    """
    WITH moved AS (
        UPDATE orders o SET status = u.status, broker_order_id = u.broker_order_id,
            filled_qty = u.filled_qty, filled_avg_price = u.filled_avg_price,
            updated_at = now()
        FROM jsonb_to_recordset(CAST(:orders AS jsonb)) AS u(client_order_id text, status text,
            broker_order_id text, filled_qty numeric, filled_avg_price double precision)
        WHERE o.client_order_id = u.client_order_id
    ), filled AS (
        INSERT INTO fills (fill_id, client_order_id, symbol, side, qty, price, filled_at)
        SELECT * FROM jsonb_to_recordset(CAST(:fills AS jsonb)) AS f(fill_id text,
            client_order_id text, symbol text, side text, qty numeric, price double precision,
            filled_at timestamptz)
        ON CONFLICT (fill_id) DO NOTHING
    )
    INSERT INTO order_events (client_order_id, status, source, detail)
    SELECT e.client_order_id, e.status, :source, e.detail
    FROM jsonb_to_recordset(CAST(:events AS jsonb))
        AS e(n integer, client_order_id text, status text, detail jsonb)
    ORDER BY e.n
    """
)


def write_batch(
    conn: sa.Connection,
    orders: list[dict[str, Any]],
    fills: list[dict[str, Any]],
    events: list[dict[str, Any]],
    source: str,
) -> None:
    """Write a batch of broker reports in one statement: ``orders`` (client_order_id, status,
    broker_order_id, filled_qty, filled_avg_price), new ``fills`` rows and ``events``
    (n: their order, client_order_id, status, detail), the events' source being ``source``."""
    conn.execute(
        _WRITE,
        {
            "orders": json.dumps(orders, default=str),
            "fills": json.dumps(fills, default=str),
            "events": json.dumps(events, default=str),
            "source": source,
        },
    )


def count(engine: sa.Engine, plan: PlanRef) -> int:
    """How many orders the ledger holds for the plan."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM orders WHERE {KEY}"), plan.params()
            ).scalar_one()
        )


def insert(
    conn: sa.Connection,
    plan: PlanRef,
    lines: Sequence[Line],
    status: str,
    source: str,
    ledger: tuple[str, str, str],
) -> int:
    """Write the plan's order ``lines`` in ``status``, each with its event from ``source``, in
    one statement; lines the ledger holds already are skipped. ``ledger``: (broker, model
    name, model version). Returns how many were written."""
    broker, model_name, model_version = ledger
    rows = [
        {"client_order_id": x.client_order_id, "symbol": x.symbol, "side": x.side, "qty": x.qty}
        for x in lines
    ]
    return len(
        conn.execute(
            sa.text(
                "WITH added AS (INSERT INTO orders (client_order_id, strategy, session_date, "
                "plan_version, symbol, side, qty, status, broker, model_name, model_version) "
                "SELECT l.client_order_id, :s, :d, :v, l.symbol, l.side, l.qty, :st, :b, :m, "
                ":mv FROM jsonb_to_recordset(CAST(:lines AS jsonb)) AS l(client_order_id "
                "text, symbol text, side text, qty numeric) "
                "ON CONFLICT (client_order_id) DO NOTHING RETURNING client_order_id, status) "
                "INSERT INTO order_events (client_order_id, status, source) "
                "SELECT client_order_id, status, :src FROM added RETURNING client_order_id"
            ),
            {
                **plan.params(),
                "lines": json.dumps(rows, default=str),
                "st": status,
                "src": source,
                "b": broker,
                "m": model_name,
                "mv": model_version,
            },
        ).all()
    )


def with_status(engine: sa.Engine, plan: PlanRef, statuses: Iterable[str]) -> list[sa.Row]:
    """The plan's orders (client_order_id, symbol, side, qty) in one of ``statuses``, sells
    first, then by symbol."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    f"SELECT client_order_id, symbol, side, qty FROM orders WHERE {KEY} "
                    "AND status = ANY(:st) ORDER BY side DESC, symbol"
                ),
                {**plan.params(), "st": list(statuses)},
            ).all()
        )


def of_session(conn: sa.Connection, strategy: str, session_date: date) -> list[sa.Row]:
    """The orders (client_order_id, symbol, side, qty, status) of the strategy's session, of
    every plan version, by symbol then side."""
    return list(
        conn.execute(
            sa.text(
                "SELECT client_order_id, symbol, side, qty, status FROM orders "
                "WHERE strategy = :s AND session_date = :d ORDER BY symbol, side"
            ),
            {"s": strategy, "d": session_date},
        ).all()
    )


def read(engine: sa.Engine, coid: str) -> sa.Row:
    """The order's symbol, side, qty, session_date and broker."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT symbol, side, qty, session_date, broker FROM orders "
                "WHERE client_order_id = :c"
            ),
            {"c": coid},
        ).one()


def locked_for_send(conn: sa.Connection, coid: str, kill_switch: str) -> sa.Row:
    """The order's status and attempts, its row locked until the caller's transaction ends,
    with the ``controls`` row ``kill_switch``'s enabled, reason and updated_at (NULL when it
    was never set)."""
    return conn.execute(
        sa.text(
            "SELECT o.status, o.attempts, k.enabled, k.reason, k.updated_at FROM orders o "
            "LEFT JOIN controls k ON k.name = :k WHERE o.client_order_id = :c "
            "FOR UPDATE OF o"
        ),
        {"c": coid, "k": kill_switch},
    ).one()


def set_last_error(engine: sa.Engine, coid: str, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE orders SET last_error = :e WHERE client_order_id = :c"),
            {"e": error, "c": coid},
        )


def of_broker(
    engine: sa.Engine, broker: str, statuses: Sequence[str] | None, listed: Sequence[str]
) -> list[sa.Row]:
    """The broker's orders (client_order_id, symbol, side, qty, status, filled_qty): all of
    them when ``statuses`` is None, else those in one of ``statuses`` or in ``listed``."""
    narrowed = " AND (status = ANY(:open) OR client_order_id = ANY(:listed))"
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT client_order_id, symbol, side, qty, status, filled_qty FROM orders "
                    "WHERE broker = :b" + ("" if statuses is None else narrowed)
                ),
                {"b": broker, "open": list(statuses or ()), "listed": list(listed)},
            ).all()
        )


def filled_and_fills(engine: sa.Engine, broker: str, coids: Sequence[str]) -> list[sa.Row]:
    """(client_order_id, filled_qty, fills: the sum of its fills rows, 0 when none) of each of
    the broker's orders in ``coids``."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT o.client_order_id, o.filled_qty, coalesce(sum(f.qty), 0) AS fills "
                    "FROM orders o LEFT JOIN fills f USING (client_order_id) WHERE o.broker = :b "
                    "AND o.client_order_id = ANY(:c) GROUP BY o.client_order_id, o.filled_qty"
                ),
                {"b": broker, "c": list(coids)},
            ).all()
        )


def net_fills(engine: sa.Engine, broker: str) -> dict[str, Decimal]:
    """Shares by symbol of the broker's fills, bought less sold."""
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "SELECT f.symbol, sum(CASE f.side WHEN 'buy' THEN f.qty ELSE -f.qty END) "
                    "FROM fills f JOIN orders o USING (client_order_id) WHERE o.broker = :b "
                    "GROUP BY f.symbol"
                ),
                {"b": broker},
            ).all()
        )


def simulated_fills(engine: sa.Engine, start: date, end: date) -> list[sa.Row]:
    """The simulated venue's fills of its orders' sessions in ``[start, end]``: session_date,
    symbol, side, qty (float), price, reference (the session's open, from ``bars``) and
    commission, by session, sells first, then by symbol."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT o.session_date, f.symbol, f.side, f.qty::float8 AS qty, f.price, "
                    "b.open AS reference, f.commission FROM fills f "
                    "JOIN sim_broker_orders o USING (client_order_id) "
                    "JOIN bars b ON b.symbol = f.symbol AND b.session_date = o.session_date "
                    "WHERE o.session_date BETWEEN :a AND :b "
                    "ORDER BY o.session_date, f.side DESC, f.symbol"
                ),
                {"a": start, "b": end},
            ).all()
        )


_NEW_YORK = "'America/New_York'"
#: A fill's session: its ``filled_at``'s date in New York time.
FILL_SESSION = f"(filled_at AT TIME ZONE {_NEW_YORK})::date"


def _filled_through(day: str) -> str:
    """``FILL_SESSION <= day`` (``day``: a date placeholder) as a bound on ``filled_at``
    itself: one time-zone conversion a query instead of one a fill (a third of the time of a
    scan of every fill)."""
    return f"filled_at < (CAST({day} AS date) + 1)::timestamp AT TIME ZONE {_NEW_YORK}"


def _filled_after(day: str) -> str:
    """``FILL_SESSION > day`` as a bound on ``filled_at``; every fill when ``day`` is NULL."""
    return (
        f"filled_at >= coalesce((CAST({day} AS date) + 1)::timestamp AT TIME ZONE {_NEW_YORK}, "
        "'-infinity')"
    )


#: A fill's signed shares (bought positive; ``numeric``), as a float, and its cash flow (USD,
#: paid negative, with the commission).
SIGNED_QTY = "CASE WHEN side = 'buy' THEN qty ELSE -qty END"
FILL_SHARES = f"({SIGNED_QTY})::float8"
FILL_CASH = f"(-{FILL_SHARES} * price - commission)"


def fill_flows(conn: sa.Connection, as_of: date) -> pd.DataFrame:
    """Per session with fills on or before ``as_of``, oldest first: ``session_date``,
    ``fills`` (their count) and ``cash`` (their summed cash flow, USD)."""
    return read_frame(
        conn,
        f"SELECT {FILL_SESSION} AS d, count(*), sum({FILL_CASH}) FROM fills "
        f"WHERE {_filled_through('%s')} GROUP BY d ORDER BY d",
        (as_of,),
        ["session_date", "fills", "cash"],
    )


def fills_between(conn: sa.Connection, after: date | None, as_of: date) -> pd.DataFrame:
    """The fills of the sessions after ``after`` (from the first when None) through
    ``as_of``: symbol, session_date, shares (signed) and cash (USD), as in :data:`FILL_CASH`."""
    return read_frame(
        conn,
        f"SELECT symbol, {FILL_SESSION}, {FILL_SHARES}, {FILL_CASH} FROM fills "
        f"WHERE {_filled_through('%s')} AND {_filled_after('%s')}",
        (as_of, after),
        ["symbol", "session_date", "shares", "cash"],
    )


def holdings_through(conn: sa.Connection, day: date) -> pd.Series:
    """Shares held (float, by symbol; none when flat) after the fills of sessions on or
    before ``day``."""
    rows = conn.execute(
        sa.text(
            f"SELECT symbol, sum({SIGNED_QTY})::float8 FROM fills "
            f"WHERE {_filled_through(':d')} GROUP BY symbol HAVING sum({SIGNED_QTY}) <> 0"
        ),
        {"d": day},
    ).all()
    return pd.Series(dict(rows), dtype=float, name="shares")  # type: ignore[arg-type]


def filled_symbols(conn: sa.Connection, as_of: date) -> list[str]:
    """Every symbol with a fill on or before ``as_of``, sorted."""
    return list(
        conn.execute(
            sa.text(f"SELECT DISTINCT symbol FROM fills WHERE {_filled_through(':d')} ORDER BY 1"),
            {"d": as_of},
        ).scalars()
    )


def holdings_at_cost(engine: sa.Engine) -> pd.DataFrame:
    """Per symbol of every fill: ``shares`` (bought less sold) and ``cost`` (USD paid less
    received, commissions added), as floats."""
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                f"SELECT symbol, sum({SIGNED_QTY})::float8 "
                f"AS shares, sum(({SIGNED_QTY}) * price "
                "+ commission)::float8 AS cost FROM fills GROUP BY symbol"
            ),
            conn,
        )


def replace_frozen(conn: sa.Connection, plan: PlanRef, lines: Sequence[Line]) -> None:
    """Replace the order lines frozen with the plan (``plan_orders``)."""
    key = plan.params()
    conn.execute(sa.text(f"DELETE FROM plan_orders WHERE {KEY}"), key)
    if lines:
        conn.execute(
            sa.text(
                "INSERT INTO plan_orders (strategy, session_date, plan_version, "
                "client_order_id, symbol, side, qty) VALUES (:s, :d, :v, :c, :sym, :side, :q)"
            ),
            [
                {**key, "c": i.client_order_id, "sym": i.symbol, "side": i.side, "q": i.qty}
                for i in lines
            ],
        )


def frozen(engine: sa.Engine, plan: PlanRef) -> list[sa.Row]:
    """The order lines frozen with the plan (client_order_id, symbol, side, qty), sells first,
    then by symbol."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT client_order_id, symbol, side, qty FROM plan_orders "
                    f"WHERE {KEY} ORDER BY side DESC, symbol"
                ),
                plan.params(),
            ).all()
        )


def upsert_dead_letter(
    conn: sa.Connection,
    coid: str,
    broker: str,
    http_status: int | None,
    error_code: int | None,
    error: str,
    attempts: int,
) -> None:
    """Record why the broker refused the order; a second refusal replaces the error, adds its
    attempts and makes the row unresolved again."""
    conn.execute(
        sa.text(
            "INSERT INTO dead_letter_orders (client_order_id, broker, http_status, "
            "error_code, error, attempts) VALUES (:c, :b, :s, :code, :e, :a) "
            "ON CONFLICT (client_order_id) DO UPDATE SET http_status = excluded.http_status, "
            "error_code = excluded.error_code, error = excluded.error, "
            "attempts = dead_letter_orders.attempts + excluded.attempts, "
            "failed_at = now(), resolved = false"
        ),
        {
            "c": coid,
            "b": broker,
            "s": http_status,
            "code": error_code,
            "e": error,
            "a": attempts,
        },
    )


def dead_letters(engine: sa.Engine, include_resolved: bool) -> list[sa.Row]:
    """The dead letters with their orders (client_order_id, broker, symbol, side, qty as
    text, http_status, error_code, error, attempts, failed_at, retried_at, resolved, the
    order's status), oldest failure first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT d.client_order_id, d.broker, o.symbol, o.side, o.qty::text AS qty, "
                    "d.http_status, d.error_code, d.error, d.attempts, d.failed_at, "
                    "d.retried_at, d.resolved, o.status FROM dead_letter_orders d JOIN orders o "
                    "USING (client_order_id) WHERE :all OR NOT d.resolved ORDER BY d.failed_at"
                ),
                {"all": include_resolved},
            ).all()
        )


def mark_retried(engine: sa.Engine, coid: str, dead_letter: str) -> None:
    """Stamp the retry; the dead letter is resolved when its order's status is no longer
    ``dead_letter`` (the status's name)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE dead_letter_orders d SET retried_at = now(), "
                "resolved = (o.status <> :dead) FROM orders o "
                "WHERE o.client_order_id = d.client_order_id AND d.client_order_id = :c"
            ),
            {"c": coid, "dead": dead_letter},
        )


def dead_letter_status(engine: sa.Engine, coid: str) -> str | None:
    """The ledger status of a dead-lettered order; None when it was never dead-lettered."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT o.status FROM dead_letter_orders d JOIN orders o "
                "USING (client_order_id) WHERE d.client_order_id = :c"
            ),
            {"c": coid},
        ).scalar_one_or_none()


def orders_by_status(conn: sa.Connection) -> list[sa.Row]:
    """``(status, broker, count)`` of the orders in the ledger."""
    return list(
        conn.execute(sa.text("SELECT status, broker, count(*) FROM orders GROUP BY 1, 2")).all()
    )


def orders_frame(conn: sa.Connection) -> pd.DataFrame:
    """Every order (client_order_id, symbol, side, qty and filled_qty as float, status), by
    client_order_id."""
    return pd.read_sql(
        sa.text(
            "SELECT client_order_id, symbol, side, qty::float8 AS qty, status, "
            "filled_qty::float8 AS filled_qty FROM orders ORDER BY client_order_id"
        ),
        conn,
    )


def fills_frame(conn: sa.Connection) -> pd.DataFrame:
    """Every fill (fill_id, client_order_id, symbol, side, qty as float, price, commission),
    by fill_id."""
    return pd.read_sql(
        sa.text(
            "SELECT fill_id, client_order_id, symbol, side, qty::float8 AS qty, price, "
            "commission FROM fills ORDER BY fill_id"
        ),
        conn,
    )


def fill_latencies(conn: sa.Connection) -> list[float]:
    """Seconds from each order's first broker acknowledgement to its first fill event, over the
    latest 10,000 filled orders (negative when the fill was recorded first)."""
    return [
        float(seconds)
        for seconds in conn.execute(
            sa.text(
                "SELECT extract(epoch FROM f.at - s.at) FROM "
                "(SELECT client_order_id, min(at) AS at FROM order_events "
                " WHERE status NOT IN ('planned', 'filled') GROUP BY 1) s JOIN "
                "(SELECT client_order_id, min(at) AS at FROM order_events "
                " WHERE status = 'filled' GROUP BY 1) f USING (client_order_id) "
                "ORDER BY f.at DESC LIMIT 10000"
            )
        ).scalars()
    ]
