"""Time partitions of the bar tables on plain PostgreSQL: created ahead, dropped by retention.

``bars`` is range-partitioned by ``ts`` into calendar years (UTC), ``minute_bars`` into
calendar months (UTC), each with a ``<table>_default`` partition that catches a row no
partition covers (nothing is ever refused). :func:`ensure_partitions` creates the partitions a
load needs before it runs, moving out of the default partition any rows they cover;
:func:`drop_expired_partitions` drops partitions that lie wholly before a horizon.

With TimescaleDB the same tables are hypertables: TimescaleDB makes its chunks itself, so
``ensure_partitions`` does nothing, and retention calls ``drop_chunks`` with the same horizon.

Nothing here reads the wall clock: retention is relative to an ``as_of`` the caller passes
(the data interval being processed), so a rerun drops the same partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from pipelines.errors import WarehouseError

Grain = Literal["year", "month"]

#: The time-partitioned tables and the width of one partition.
PARTITIONED: dict[str, Grain] = {"bars": "year", "minute_bars": "month"}

#: The continuous aggregate ``daily_from_minute`` refreshes the last 30 days (sql/0005);
#: minute-bar retention must stay beyond that window or it would drop what is not yet rolled up.
CAGG_REFRESH_DAYS = 30


@dataclass(frozen=True)
class Partition:
    """One range partition: rows with ``lower <= ts < upper`` (UTC)."""

    name: str
    lower: datetime
    upper: datetime


def _grain(table: str) -> Grain:
    try:
        return PARTITIONED[table]
    except KeyError:
        raise WarehouseError(
            f"{table!r} is not a time-partitioned table; expected one of {sorted(PARTITIONED)}"
        ) from None


def _floor(day: date, grain: Grain) -> date:
    return date(day.year, 1, 1) if grain == "year" else date(day.year, day.month, 1)


def _next(day: date, grain: Grain) -> date:
    if grain == "year":
        return date(day.year + 1, 1, 1)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _name(table: str, lower: date, grain: Grain) -> str:
    return f"{table}_y{lower.year}" if grain == "year" else f"{table}_m{lower:%Y_%m}"


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def backend(conn: sa.Connection, table: str) -> Literal["partitioned", "hypertable", "plain"]:
    """How ``table`` is split by time on this server."""
    if conn.execute(
        sa.text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"),
        {"t": table},
    ).first():
        return "partitioned"
    has_timescale = conn.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).first()
    if (
        has_timescale
        and conn.execute(
            sa.text(
                "SELECT 1 FROM timescaledb_information.hypertables "
                "WHERE hypertable_schema = current_schema() AND hypertable_name = :t"
            ),
            {"t": table},
        ).first()
    ):
        return "hypertable"
    return "plain"


def list_partitions(conn: sa.Connection, table: str) -> list[Partition]:
    """The range partitions of ``table`` in time order (the default partition excluded)."""
    rows = conn.execute(
        sa.text(
            r"""
            SELECT c.relname, (b.m)[1]::timestamptz AS lower, (b.m)[2]::timestamptz AS upper
              FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
             CROSS JOIN LATERAL (
                   SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                       'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m) b
             WHERE i.inhparent = to_regclass(:t) AND b.m IS NOT NULL
             ORDER BY 2
            """
        ),
        {"t": table},
    ).all()
    return [Partition(r.relname, r.lower, r.upper) for r in rows]


def ensure_partitions(conn: sa.Connection, table: str, start: date, end: date) -> list[str]:
    """Create the partitions of ``table`` covering ``[start, end]``; return the new ones' names.

    Runs in the caller's transaction. Rows already in the default partition that a new
    partition covers are moved into it in the same transaction. A no-op on a hypertable.
    """
    grain = _grain(table)
    if start > end:
        raise WarehouseError(f"partition range start {start} is after end {end}")
    if backend(conn, table) != "partitioned":
        return []
    # Concurrent loads (Airflow tasks, the CLI) may want the same partition.
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"partitions.{table}"}
    )
    existing = {p.name for p in list_partitions(conn, table)}
    created: list[str] = []
    lower = _floor(start, grain)
    while lower <= end:
        upper = _next(lower, grain)
        name = _name(table, lower, grain)
        if name not in existing:
            _create(conn, table, name, _utc(lower), _utc(upper))
            created.append(name)
        lower = upper
    return created


def _create(conn: sa.Connection, table: str, name: str, lower: datetime, upper: datetime) -> None:
    bounds = {"lo": lower, "hi": upper}
    default = f"{table}_default"
    # A new partition may not overlap rows the default partition holds: park them first.
    conn.exec_driver_sql(f"CREATE TEMP TABLE _parked (LIKE {table}) ON COMMIT DROP")
    conn.execute(
        sa.text(
            f"WITH moved AS (DELETE FROM {default} WHERE ts >= :lo AND ts < :hi RETURNING *) "
            "INSERT INTO _parked SELECT * FROM moved"
        ),
        bounds,
    )
    # DDL takes no bind parameters; the bounds are generated here from dates, not input.
    conn.exec_driver_sql(
        f"CREATE TABLE {name} PARTITION OF {table} "
        f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
    )
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM _parked")
    conn.exec_driver_sql("DROP TABLE _parked")


@dataclass(frozen=True)
class Expiry:
    """What retention would drop from one table: whole partitions (chunks) and their rows."""

    table: str
    cutoff: datetime | None
    partitions: list[str]
    rows: int


def _check_horizon(table: str, retention_days: int) -> None:
    if retention_days < 1:
        raise WarehouseError(f"retention must be at least one day, got {retention_days}")
    if table == "minute_bars" and retention_days <= CAGG_REFRESH_DAYS:
        raise WarehouseError(
            f"MINUTE_BARS_RETENTION_DAYS={retention_days} would reach into the {CAGG_REFRESH_DAYS}"
            "-day refresh window of daily_from_minute; set it above "
            f"{CAGG_REFRESH_DAYS} days or leave it empty"
        )


def newest_row(conn: sa.Connection, table: str) -> datetime | None:
    """The newest ``ts`` in ``table`` (None when it is empty)."""
    _grain(table)
    return conn.execute(sa.text(f"SELECT max(ts) FROM {table}")).scalar()


def check_as_of(conn: sa.Connection, table: str, as_of: date, slack_days: int) -> None:
    """Refuse an ``as_of`` beyond ``table``'s newest row plus ``slack_days``.

    Retention counts back from the data being processed; an ``as_of`` far past the data
    (a typo, 2099-01-01) would drop everything it should keep. An empty table passes: it has
    nothing to lose.
    """
    newest = newest_row(conn, table)
    if newest is None:
        return
    limit = newest.astimezone(UTC).date() + timedelta(days=slack_days)
    if as_of > limit:
        raise WarehouseError(
            f"refusing retention as of {as_of}: the newest {table} row is from "
            f"{newest.astimezone(UTC).date()}, and RETENTION_AS_OF_SLACK_DAYS={slack_days} "
            f"allows at most {limit}; nothing was dropped. Pass --as-of on or before {limit} "
            "(the session being processed)"
        )


def expired_partitions(
    conn: sa.Connection, table: str, as_of: date, retention_days: int | None
) -> Expiry:
    """What :func:`drop_expired_partitions` would drop, with the rows inside; drops nothing."""
    _grain(table)
    if retention_days is None:
        return Expiry(table, None, [], 0)
    _check_horizon(table, retention_days)
    cutoff = _utc(as_of - timedelta(days=retention_days))
    kind = backend(conn, table)
    if kind == "hypertable":
        names = list(
            conn.execute(
                sa.text("SELECT c::text FROM show_chunks(:t, older_than => :c) AS c"),
                {"t": table, "c": cutoff},
            ).scalars()
        )
    elif kind == "partitioned":
        names = [p.name for p in list_partitions(conn, table) if p.upper <= cutoff]
    else:
        names = []
    # Names come from the catalog (pg_class / show_chunks), not from input.
    count = "SELECT count(*) FROM {}"
    rows = sum(conn.exec_driver_sql(count.format(_quoted(n))).scalar_one() for n in names)
    return Expiry(table, cutoff, names, int(rows))


def _quoted(name: str) -> str:
    """A catalog name as SQL: a schema-qualified chunk name is already quoted as needed."""
    return name if "." in name else f'"{name}"'


def drop_expired_partitions(
    conn: sa.Connection, table: str, as_of: date, retention_days: int | None
) -> list[str]:
    """Drop what lies wholly before ``as_of - retention_days``; return what was dropped.

    ``retention_days=None`` keeps everything. On plain PostgreSQL a partition is dropped only
    if its upper bound is at or before the cutoff, so no row at or after the cutoff is ever
    removed; the default partition is never dropped. On a hypertable the same cutoff goes to
    ``drop_chunks`` (which also drops whole chunks only). Callers check ``as_of`` first
    (:func:`check_as_of`) and say what goes (:func:`expired_partitions`).
    """
    _grain(table)
    if retention_days is None:
        return []
    _check_horizon(table, retention_days)
    cutoff = _utc(as_of - timedelta(days=retention_days))
    kind = backend(conn, table)
    if kind == "hypertable":
        return list(
            conn.execute(
                sa.text("SELECT c::text FROM drop_chunks(:t, older_than => :c) AS c"),
                {"t": table, "c": cutoff},
            ).scalars()
        )
    if kind != "partitioned":
        return []
    # Not while a load creates partitions of this table (ensure_partitions takes this lock).
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"partitions.{table}"}
    )
    dropped = []
    for part in list_partitions(conn, table):
        if part.upper <= cutoff:
            conn.exec_driver_sql(f'DROP TABLE "{part.name}"')
            dropped.append(part.name)
    return dropped
