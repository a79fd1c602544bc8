"""The demo: the whole pipeline through Airflow on the offline sample data.

Runs each DAG with ``dag.test()`` (one process) against the Airflow metadata database that
``make airflow`` serves (database ``airflow`` on the warehouse's server: see
``scripts/airflow_env.py``), so the Airflow UI shows the demo's runs, task logs and asset
events afterwards: market data over the sample's whole range in one run (a range
backfill from the trigger form, not one run per day), features, training, then the pre-market
rebalance for the last sessions, and prints a summary. Running it again changes no data.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.setdefault("MLTRADE_HOME", str(ROOT / ".mltrade")))
os.environ.setdefault("AIRFLOW_HOME", str(HOME / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT / "dags"))
sys.path.insert(0, str(ROOT / "scripts"))

SAMPLE_START, SAMPLE_END = date(2009, 8, 21), date(2010, 8, 20)
TRAIN_AS_OF = date(2010, 8, 9)
# Five pre-market rebalances after the training date. (The sample has no bars for
# 2010-08-18, so a rebalance on 08-19 would rightly stop for lack of fresh features.)
REBALANCE_SESSIONS = (date(2010, 8, 10), date(2010, 8, 11), date(2010, 8, 12), date(2010, 8, 13),
                      date(2010, 8, 16))

# The news step's sessions: made-up fixture items (pipelines/news/sources/fixtures.py).
NEWS_START = date(2010, 8, 2)

# One tearsheet on the sample: four walk-forward windows (the year is too short for twelve).
BACKTEST_CONF = {"strategy": "momentum", "start": str(SAMPLE_START), "end": str(SAMPLE_END),
                 "n_windows": 4}


@dataclass(frozen=True)
class Step:
    """One DAG run of the demo: the DAG (its file in dags/ has the same name), its trigger-form
    conf, and what it does."""

    dag_id: str
    conf: dict
    message: str


# The demo's DAG runs, in order. The distributed-run test triggers the same runs through
# Airflow's REST API on the CeleryExecutor.
STEPS = (
    Step("market_data", {"start": str(SAMPLE_START), "end": str(SAMPLE_END)},
         f"market_data: load {SAMPLE_START} → {SAMPLE_END} from the sample source"),
    Step("features", {}, "features: compute point-in-time characteristics"),
    Step("news", {"start": str(NEWS_START), "end": str(SAMPLE_END)},
         f"news: OFFLINE FIXTURES (made-up headlines, not real news) {NEWS_START} → "
         f"{SAMPLE_END}: store, score, sentiment feature set"),
    Step("train", {"as_of": str(TRAIN_AS_OF)},
         f"train: fit and register a model on data through {TRAIN_AS_OF}"),
    *(Step("premarket_rebalance", {"session_date": str(day)},
           f"premarket_rebalance: trade the {day} open") for day in REBALANCE_SESSIONS),
    Step("backtest", BACKTEST_CONF,
         "backtest: walk-forward momentum over the sample, tearsheet under reports/"),
)


def _latest_backtest(seconds: float) -> dict:
    import sqlalchemy as sa

    from pipelines.warehouse import get_engine

    with get_engine().connect() as conn:
        row = conn.execute(sa.text(
            "SELECT report_path, metrics->>'sharpe' AS sharpe FROM backtest_runs "
            "WHERE strategy = 'momentum' ORDER BY created_at DESC LIMIT 1")).one()
    return {"report": row.report_path, "oos_sharpe_after_costs": round(float(row.sharpe), 2),
            "seconds": round(seconds, 1)}


def _step(message: str) -> float:
    print(f"==> {message}", flush=True)
    return time.monotonic()


class DemoFailed(RuntimeError):
    """A DAG run of the demo did not succeed."""


def _run(dag, conf: dict) -> None:
    """``dag.test()`` one run; a failed run stops the demo with the DAG's name.

    The demo fails fast: scheduled runs keep their retries, but here a failure is shown at
    once instead of after minutes of back-off.
    """
    for task in dag.tasks:
        task.retries = 0
    run = dag.test(run_conf=conf)
    if run.state != "success":
        raise DemoFailed(f"DAG {dag.dag_id} ended {run.state} (conf {conf}); "
                         "its task log above says why")


def run() -> dict:
    """Run every stage through Airflow and return the summary."""
    from pipelines import jobs
    from pipelines.warehouse import get_engine
    from pipelines.warehouse.migrate import upgrade

    t0 = _step("warehouse: start PostgreSQL and apply migrations")
    upgrade(get_engine())
    _step("airflow: prepare the metadata database")
    from airflow.utils.db import initdb

    logging.getLogger("alembic").setLevel(logging.WARNING)
    initdb()  # creates the schema from the models the first time; a no-op when current

    from demo_task_logs import task_log_files

    dags, seconds = {}, {}  # one DAG object per id, reused across its runs; its last run's time
    with task_log_files():  # the UI shows each task's log, as for a scheduled run
        for step in STEPS:
            t_step = _step(step.message)
            if step.dag_id not in dags:
                dags[step.dag_id] = getattr(importlib.import_module(step.dag_id), step.dag_id)()
            _run(dags[step.dag_id], step.conf)
            seconds[step.dag_id] = time.monotonic() - t_step
    summary = jobs.demo_summary(SAMPLE_END)
    summary["backtest"] = _latest_backtest(seconds["backtest"])
    summary["seconds"] = round(time.monotonic() - t0, 1)
    return summary


def use_shared_airflow() -> None:
    """Point this process's Airflow at ``make airflow``'s metadata database (and settings).

    Called before Airflow is imported; a variable already set in the environment wins.
    """
    from airflow_env import airflow_env

    os.environ.update(airflow_env())


def main() -> None:
    use_shared_airflow()
    try:
        summary = run()
    except DemoFailed as exc:
        raise SystemExit(f"demo stopped: {exc}") from exc
    print("\n" + json.dumps(summary, indent=2, default=str))
    print(f"""
Where to look:
  MLflow UI:   make mlflow-ui        (http://localhost:5000, model {summary['model']['name']})
  Airflow UI:  make airflow          (http://localhost:8080, DAGs tagged mltrade)
  Tearsheet:   {summary['backtest']['report']}
  Warehouse:   .venv/bin/mltrade db url   (tables bars, quarantine, features, predictions,
               plans, target_weights, orders, order_events, fills, positions, pipeline_runs)""")


if __name__ == "__main__":
    main()
