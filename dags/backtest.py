"""On-demand walk-forward backtest (no schedule): trigger it with a strategy and a date range.

The task calls the same job as `mltrade backtest`: a tearsheet under $MLTRADE_HOME/reports/,
rows in the backtest_* tables, an MLflow run. It returns the run key and the report's path.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task
from dag_defaults import DAG_ARGS, DEFAULT_ARGS, as_date

STRATEGIES = ["momentum", "mean_reversion", "ml_xgboost", "ml_random_forest", "ml_ipca", "ensemble"]


@dag(
    schedule=None,  # on demand only: a backtest is asked for, never due
    description="Walk-forward backtest of a strategy over a date range: tearsheet, MLflow run",
    **DAG_ARGS,
    default_args={**DEFAULT_ARGS, "retries": 1, "execution_timeout": timedelta(hours=2)},
    tags=["mltrade", "backtest"],
    params={
        "strategy": Param("momentum", type="string", enum=STRATEGIES),
        "start": Param(
            type="string",
            format="date",
            description="first session of data to use, training included (required; the "
            "sample data starts 2009-08-21)",
        ),
        "end": Param(
            type="string",
            format="date",
            description="last session (required; the sample data ends 2010-08-20)",
        ),
        "n_windows": Param(
            4,
            type="integer",
            minimum=1,
            description="walk-forward windows (the sample's one year supports 4)",
        ),
        "oos_ratio": Param(
            0.3,
            type="number",
            exclusiveMinimum=0,
            exclusiveMaximum=1,
            description="out-of-sample share of each window",
        ),
        "scheme": Param("rolling", type="string", enum=["rolling", "expanding"]),
        "retrain_every": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="refit every N sessions; empty = once a window",
        ),
        "rebalance_every": Param(
            5, type="integer", minimum=1, description="sessions between optimizations"
        ),
        "mc_paths": Param(1000, type="integer", minimum=10, description="bootstrap paths"),
        "seed": Param(0, type="integer", description="Monte Carlo seed"),
    },
    doc_md=__doc__,
)
def backtest():
    @task
    def run(params=None, run_id=None) -> dict:
        from pipelines import jobs

        start, end = as_date(params.get("start")), as_date(params.get("end"))
        if start is None or end is None:
            raise ValueError("the trigger form needs a start and an end date")
        options = {
            k: params.get(k)
            for k in (
                "n_windows",
                "oos_ratio",
                "scheme",
                "retrain_every",
                "rebalance_every",
                "mc_paths",
                "seed",
            )
        }
        result = jobs.backtest(params["strategy"], start, end, run_id, options)
        return {k: result[k] for k in ("run_key", "report", "mlflow_run_id")}

    run()


backtest()
