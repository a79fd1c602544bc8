"""Read models of the monitoring: the warehouse state the Prometheus collector
(:class:`pipelines.monitoring.metrics.WarehouseCollector`) reports and that no repository
module holds (validation batches, quarantine); the order counts and fill latency are the
ledger's (:mod:`pipelines.warehouse.orders`).
Each reads on the caller's connection: one scrape, one connection.
"""

from __future__ import annotations

import sqlalchemy as sa


def last_validations(conn: sa.Connection) -> list[sa.Row]:
    """Each source's last validation batch: ``source``, ``rows_checked``, ``rows_failed``,
    ``success``."""
    return list(
        conn.execute(
            sa.text(
                "SELECT source, rows_checked, rows_failed, success FROM validation_runs v "
                "WHERE id = (SELECT max(id) FROM validation_runs w WHERE w.source = v.source)"
            )
        ).all()
    )


def quarantined_rows(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar_one())
