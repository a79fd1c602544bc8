-- One row per backtest configuration run. run_key hashes everything the result depends on
-- (strategy and its parameters, walk-forward plan, costs, limits, the data), so rerunning
-- the same backtest replaces its rows instead of adding new ones.
CREATE TABLE backtest_runs (
    run_key         text        PRIMARY KEY,
    strategy        text        NOT NULL,
    start_date      date        NOT NULL,
    end_date        date        NOT NULL,
    oos_start       date        NOT NULL,  -- first out-of-sample session traded
    params          jsonb       NOT NULL,  -- engine, strategy, cost and limit settings
    metrics         jsonb       NOT NULL,  -- out of sample, after costs (pipelines.backtest.metrics)
    monte_carlo     jsonb       NOT NULL,  -- bootstrap confidence intervals
    timings         jsonb       NOT NULL,  -- seconds per stage
    code_version    text        NOT NULL,
    report_path     text,
    mlflow_run_id   text,
    run_id          text        NOT NULL,  -- the CLI or Airflow run that produced it
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backtest_runs_period_idx ON backtest_runs (start_date, end_date);
