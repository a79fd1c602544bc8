"""The environment Airflow runs with, for ``make airflow``, the demo and the tests: one place.

- Metadata: database ``airflow`` on the warehouse's server (the embedded PostgreSQL by default)
  through the psycopg2 driver: under psycopg 3 the asset graph and DAG-dependency views fail
  with ``operator does not exist: jsonb #> character varying``.
- Secure by default: the API server binds 127.0.0.1; the simple auth manager has one user,
  ``admin``, whose password Airflow generates once into
  ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`` (never all-admins).
- Sized: the LocalExecutor starts ``parallelism`` workers; two per core, not Airflow's 32.

A variable already set in the environment wins. ``python scripts/airflow_env.py`` prints the
result as ``export`` lines for a shell (``eval "$(…)"``).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def psycopg2_url(url: str) -> str:
    """The same database URL with SQLAlchemy's psycopg2 driver (what Airflow's UI needs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        return url
    return f"postgresql+psycopg2://{rest}"


def metadata_url(database: str = "airflow") -> str:
    """Airflow's metadata database on the warehouse's server (created when missing)."""
    from pipelines.warehouse.engine import database_url

    return psycopg2_url(database_url(database))


def parallelism() -> int:
    """LocalExecutor workers: two per core (each holds ~150 MB; tasks mostly wait on I/O)."""
    return max(2, 2 * (os.cpu_count() or 1))


def airflow_env(environ: Mapping[str, str] | None = None, *, metadata: bool = True) -> dict:
    """The Airflow variables to set (those missing from ``environ``), as a dict."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("MLTRADE_HOME") or ROOT / ".mltrade")
    wanted = {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism()),
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    out = {k: v for k, v in wanted.items() if not environ.get(k)}
    if metadata and not environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        out["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url()
    elif environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        out["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = psycopg2_url(
            environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
    return out


def main() -> None:
    sys.path.insert(0, str(ROOT))
    for key, value in airflow_env().items():
        print(f"export {key}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
