"""Dead letters: orders the broker refused for good (403 buying power, 422 bad parameters).

The order's ledger status becomes ``dead_letter`` and ``dead_letter_orders`` keeps the error
(HTTP status, broker code, message, attempts; its statements are in
:mod:`pipelines.warehouse.orders`). ``mltrade orders dead-letter`` lists them;
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
from pipelines.warehouse import orders

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
        orders.upsert_dead_letter(conn, coid, broker, exc.http_status, exc.code, error, attempts)
    log.error("order dead-lettered client_order_id=%s broker=%s error=%s", coid, broker, exc)


def list_dead_letters(engine: sa.Engine, include_resolved: bool = False) -> list[DeadLetter]:
    return [DeadLetter(*row) for row in orders.dead_letters(engine, include_resolved)]


def dead_letter_status(engine: sa.Engine, coid: str) -> str:
    """The ledger status of a dead-lettered order; raises if it was never dead-lettered."""
    status = orders.dead_letter_status(engine, coid)
    if status is None:
        raise BrokerError(
            f"{coid} is not in the dead-letter table; `mltrade orders dead-letter` lists them"
        )
    return str(status)
