"""Run the statsd probe DAG once with ``dag.test()``, Airflow's statsd client switched on.

Run in its own process (``python -m tests.support.statsd_dag_run DAGS_DIR``) with
``AIRFLOW_HOME`` and ``AIRFLOW__METRICS__STATSD_*`` in the environment: Airflow reads its
configuration once per process. Each Airflow component initializes its metrics backend at
start (the scheduler, the task runner's ``main``); ``dag.test()`` runs none of those starts, so
this does what they do, for both the core's and the task SDK's stats modules.
"""

from __future__ import annotations

import sys

from airflow._shared.observability.metrics import stats as core_stats
from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
from airflow.observability.metrics.stats_utils import get_stats_factory
from airflow.sdk._shared.observability.metrics import stats as sdk_stats
from airflow.sdk.observability.metrics import stats_utils as sdk_stats_utils
from airflow.utils.db import upgradedb


def main(dags_dir: str) -> None:
    upgradedb()
    legacy = conf.getboolean("metrics", "legacy_names_on")
    core_stats.initialize(factory=get_stats_factory(), export_legacy_names=legacy)
    sdk_stats.initialize(factory=sdk_stats_utils.get_stats_factory(), export_legacy_names=legacy)
    run = DagBag(dag_folder=dags_dir).dags["statsd_probe"].test()
    print(f"state={run.state}")


if __name__ == "__main__":
    main(sys.argv[1])
