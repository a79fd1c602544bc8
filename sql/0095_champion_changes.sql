-- Every move of a model's @champion alias, whoever made it (pipelines/models/champions.py):
-- the promotion gate, a manual promotion or rollback from the CLI/DAG, the first model's
-- bootstrap, or a change made outside the pipeline (the MLflow UI or API), which the next
-- rebalance notices and records as 'external'. The version that traded is in predictions
-- and plans (model_version); this table says how it came to be the champion.
CREATE TABLE champion_changes (
    id                bigserial   PRIMARY KEY,
    model_name        text        NOT NULL,
    version           text        NOT NULL,  -- the new @champion
    previous_version  text,                  -- NULL: the model had no champion recorded
    source            text        NOT NULL
        CHECK (source IN ('bootstrap', 'gate', 'manual', 'rollback', 'external')),
    reason            text        NOT NULL,
    run_id            text        NOT NULL,  -- the CLI or Airflow run that made or saw it
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX champion_changes_model_idx ON champion_changes (model_name, id);
