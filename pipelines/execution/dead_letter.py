"""Dead letters: orders the broker refused for good (403 buying power, 422 bad parameters).

The order's ledger status becomes ``dead_letter`` and ``dead_letter_orders`` keeps the error
(HTTP status, broker code, message, attempts). ``mltrade orders dead-letter`` lists them;
``mltrade orders retry <client_order_id>`` sends one again through the exactly-once path: the
broker is asked for the client id first, so a retry never makes a second order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pipelines.errors import BrokerError
from pipelines.execution import ledger
from pipelines.execution.brokers.base import PermanentBrokerError
from pipelines.monitoring.logging import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    client_order_id: str
    broker: str
    symbol: str
    side: str
    qty: str
    http_status: int | None
    error_code: int | None
    error: str
    attempts: int
    failed_at: datetime
    retried_at: datetime | None
    resolved: bool
    status: str  # the order's ledger status now


def dead_letter(
    engine: sa.Engine, broker: str, coid: str, exc: PermanentBrokerError, attempts: int
) -> None:
    """Move the order to ``dead_letter`` and record why (redacted), in one transaction."""
    error = redact(exc)
    with engine.begin() as conn:
        ledger.transition(
            conn,
            coid,
            ledger.DEAD_LETTER,
            "broker",
            {"error": error, "http_status": exc.http_status, "code": exc.code},
            last_error=error[:1000],
        )
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
                "s": exc.http_status,
                "code": exc.code,
                "e": error,
                "a": attempts,
            },
        )
    log.error("order dead-lettered client_order_id=%s broker=%s error=%s", coid, broker, exc)


def list_dead_letters(engine: sa.Engine, include_resolved: bool = False) -> list[DeadLetter]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.client_order_id, d.broker, o.symbol, o.side, o.qty::text AS qty, "
                "d.http_status, d.error_code, d.error, d.attempts, d.failed_at, d.retried_at, "
                "d.resolved, o.status FROM dead_letter_orders d JOIN orders o "
                "USING (client_order_id) WHERE :all OR NOT d.resolved ORDER BY d.failed_at"
            ),
            {"all": include_resolved},
        ).all()
    return [DeadLetter(*row) for row in rows]


def mark_retried(engine: sa.Engine, coid: str) -> None:
    """After a retry: resolved when the order is no longer dead-lettered."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE dead_letter_orders d SET retried_at = now(), "
                "resolved = (o.status <> 'dead_letter') FROM orders o "
                "WHERE o.client_order_id = d.client_order_id AND d.client_order_id = :c"
            ),
            {"c": coid},
        )


def dead_letter_status(engine: sa.Engine, coid: str) -> str:
    """The ledger status of a dead-lettered order; raises if it was never dead-lettered."""
    with engine.connect() as conn:
        status = conn.execute(
            sa.text(
                "SELECT o.status FROM dead_letter_orders d JOIN orders o "
                "USING (client_order_id) WHERE d.client_order_id = :c"
            ),
            {"c": coid},
        ).scalar_one_or_none()
    if status is None:
        raise BrokerError(
            f"{coid} is not in the dead-letter table; `mltrade orders dead-letter` lists them"
        )
    return str(status)
