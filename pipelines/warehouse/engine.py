"""SQLAlchemy engines for the warehouse: pooled, with a statement timeout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache, partial
from typing import NoReturn

import pandas as pd
import psycopg
import sqlalchemy as sa

from pipelines.config import Settings, get_settings
from pipelines.errors import WarehouseError
from pipelines.warehouse import embedded


def warehouse_url(settings: Settings | None = None) -> str:
    """``WAREHOUSE_URL``, or the embedded server's URL (starting it if needed)."""
    settings = settings or get_settings()
    url = settings.warehouse_url
    if not url:
        return embedded.start(settings.home / "postgres")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def database_url(name: str, settings: Settings | None = None) -> str:
    """The URL of database ``name`` on the warehouse's server, created there if missing."""
    admin = embedded.admin_uri(warehouse_url(settings))
    try:
        embedded.ensure_database(admin, name)
    except psycopg.Error as exc:
        safe = sa.engine.make_url(admin).render_as_string(hide_password=True)
        raise WarehouseError(
            f"cannot create database {name!r} on the warehouse's server ({safe}): {exc}. "
            "Grant the user CREATEDB, or create the database by hand."
        ) from exc
    return embedded.sqlalchemy_url(admin, name)


def create_engine(
    url: str, settings: Settings | None = None, pre_ping: bool = True
) -> sa.Engine:
    """A pooled engine whose sessions time out statements after the configured limit.

    ``pre_ping=False`` skips the liveness round trip per checkout: for a short-lived private
    database (a backtest's) that no server restart can outlive."""
    settings = settings or get_settings()
    engine = sa.create_engine(
        url,
        pool_size=settings.warehouse_pool_size,
        pool_pre_ping=pre_ping,
        connect_args={"options": f"-c statement_timeout={settings.warehouse_statement_timeout_ms}"},
    )
    sa.event.listen(
        engine, "handle_error", partial(_explain_timeout, settings.warehouse_statement_timeout_ms)
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        safe = engine.url.render_as_string(hide_password=True)
        raise WarehouseError(
            f"cannot reach the warehouse at {safe}: {exc.orig}. Check WAREHOUSE_URL, "
            "or unset it to use the embedded PostgreSQL."
        ) from exc
    return engine


def _explain_timeout(timeout_ms: int, context: sa.engine.ExceptionContext) -> BaseException | None:
    """Turn PostgreSQL's statement-timeout cancellation into a WarehouseError that says so."""
    orig = context.original_exception
    if getattr(orig, "sqlstate", None) != "57014" or "statement timeout" not in str(orig):
        return None  # a cancel for another reason: leave SQLAlchemy's error as it is
    statement = " ".join((context.statement or "").split())[:200]
    return WarehouseError(
        f"statement cancelled after WAREHOUSE_STATEMENT_TIMEOUT_MS={timeout_ms}: {statement!r}. "
        "Raise the setting for long jobs, or narrow the query (fewer symbols or sessions per call)."
    )


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> sa.Engine:
    """The process-wide engine for ``url`` (default: :func:`warehouse_url`)."""
    return create_engine(url or warehouse_url())


def read_frame(
    conn: sa.Connection, sql: str, params: Sequence[object], columns: Sequence[str]
) -> pd.DataFrame:
    """The rows of ``sql`` (psycopg placeholders, ``%s``) as a frame with ``columns``.

    Fetched through psycopg's binary cursor, not ``pandas.read_sql``, whose SQLAlchemy rows
    cost more than the queries the money path repeats at every rebalance (the planner's
    closes, the equity curve's fills: docs/benchmarks.md, *Walk-forward backtest*).
    """
    driver = conn.connection.driver_connection
    if driver is None:
        raise WarehouseError("reading a frame needs a live psycopg connection")
    with driver.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=list(columns))


def copy_rows(conn: sa.Connection, copy_sql: str, rows: Iterable[Sequence[object]]) -> None:
    """Stream ``rows`` through ``COPY … FROM STDIN`` on the connection's open transaction."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise WarehouseError("COPY needs a live psycopg connection")
    try:
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        _raise_copy_error(exc)


def _raise_copy_error(exc: psycopg.Error) -> NoReturn:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):  # the connection, not a row, failed
        raise WarehouseError(
            f"bulk load lost its connection to the warehouse ({first_line}); nothing of this "
            "batch is written. Check that PostgreSQL runs (`mltrade check`) and rerun"
        ) from exc
    context = getattr(exc.diag, "context", None) or ""
    raise WarehouseError(
        f"bulk load failed ({first_line}; {context.strip()[:200]}); the transaction is "
        "rolled back, so nothing of this batch is written. Fix the offending row and rerun."
    ) from exc


def copy_frame(
    conn: sa.Connection,
    table: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    chunk_rows: int = 50_000,
) -> None:
    """Stream ``frame[columns]`` into ``table`` with ``COPY … FROM STDIN``, in slices.

    The text is built column by column (see :func:`encode_copy_text`), several times faster
    than encoding row by row; floats keep round-trip precision, so a reloaded value compares
    equal to the stored one. A missing value becomes NULL. Errors surface as
    :class:`WarehouseError` (see :func:`copy_rows`).
    """
    driver = conn.connection.driver_connection
    if driver is None:
        raise WarehouseError("COPY needs a live psycopg connection")
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for first in range(0, len(frame), chunk_rows):
                copy.write(encode_copy_text(frame.iloc[first : first + chunk_rows], columns))
    except psycopg.Error as exc:
        _raise_copy_error(exc)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text_column(values: pd.Series) -> list[str]:
    """One column in COPY text format: NULL as ``\\N``, specials escaped, floats round-trip."""
    kind = values.dtype.kind
    if kind in "fiu":  # repr of a float is its shortest round-trip form ("nan", "inf")
        return list(map(repr, values.to_numpy().tolist()))
    if kind == "b":
        return ["t" if v else "f" for v in values.to_numpy().tolist()]
    # Strings, dates and timestamps repeat (a symbol per session, a session per symbol):
    # format each distinct value once.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if kind == "M":
        texts = [u.isoformat() for u in uniques]
    else:
        texts = [str(u).translate(_ESCAPES) for u in uniques]
    texts.append("\\N")  # code -1 (missing) picks the NULL marker
    return [texts[i] for i in codes.tolist()]


def encode_copy_text(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """``frame[columns]`` as PostgreSQL COPY text (tab-separated, one line a row)."""
    if frame.empty:
        return ""
    arrays = [_text_column(frame[c]) for c in columns]
    return "\n".join(map("\t".join, zip(*arrays, strict=True))) + "\n"
