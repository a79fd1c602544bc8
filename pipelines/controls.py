"""Controls in the ``controls`` table; first of them the kill switch, a persisted flag every
order task checks first. (Its own module, below both risk and execution, which both read it.)
The rows are read and written through :mod:`pipelines.warehouse.controls`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from pipelines.errors import KillSwitchEngaged
from pipelines.warehouse import controls as stored
from pipelines.warehouse.controls import KILL_SWITCH


def incident_engine() -> sa.Engine:
    """An engine on the warehouse that needs nothing but ``WAREHOUSE_URL``/``MLTRADE_HOME``.

    No pending-migration check and no other setting: the kill switch must work while any
    unrelated setting is malformed (:func:`pipelines.config.warehouse_settings`).
    """
    from pipelines.config import warehouse_settings
    from pipelines.warehouse.engine import create_engine, warehouse_url

    settings = warehouse_settings()
    return create_engine(warehouse_url(settings), settings)


def set_kill_switch(engine: sa.Engine, enabled: bool, reason: str) -> None:
    """Engage (``enabled``) or release the kill switch, recording ``reason`` (redacted)."""
    from pipelines.monitoring.logging import redact

    stored.write(engine, KILL_SWITCH, enabled, redact(reason))


def kill_switch_status(engine: sa.Engine) -> tuple[bool, str | None, datetime | None]:
    """``(enabled, reason, updated_at)``; never set means off."""
    with engine.connect() as conn:
        row = stored.state(conn, KILL_SWITCH)
    return (False, None, None) if row is None else (row.enabled, row.reason, row.updated_at)


def assert_trading_allowed(engine: sa.Engine) -> None:
    enabled, reason, updated_at = kill_switch_status(engine)
    if enabled:
        raise KillSwitchEngaged(
            f"kill switch is on since {updated_at} ({reason}); no order is sent. "
            "`mltrade kill-switch off` releases it"
        )
