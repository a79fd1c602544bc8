"""Read models of the monitoring: the warehouse state the Prometheus collector
(:class:`pipelines.monitoring.metrics.WarehouseCollector`) reports and that no repository
module holds (validation batches, quarantine, the order ledger's counts and fill latency).
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


def orders_by_status(conn: sa.Connection) -> list[sa.Row]:
    """``(status, broker, count)`` of the orders in the ledger."""
    return list(
        conn.execute(sa.text("SELECT status, broker, count(*) FROM orders GROUP BY 1, 2")).all()
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
