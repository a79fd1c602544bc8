"""The PostgreSQL/TimescaleDB warehouse: connections, migrations and the embedded server."""

from pipelines.warehouse.engine import get_engine, warehouse_url

__all__ = ["get_engine", "warehouse_url"]
