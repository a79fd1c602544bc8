-- Which process runs a stage, so a run whose process is gone (SIGKILL, OOM, a reboot) can be
-- found and marked failed by the stale-run sweep (pipelines/runlog.py). Same on plain
-- PostgreSQL and TimescaleDB: pipeline_runs is an ordinary table on both.
ALTER TABLE pipeline_runs ADD COLUMN pid  integer;
ALTER TABLE pipeline_runs ADD COLUMN host text;
-- The process's start time (epoch seconds, as the OS reports it): a reused pid differs.
ALTER TABLE pipeline_runs ADD COLUMN process_started double precision;
CREATE INDEX pipeline_runs_running ON pipeline_runs (host) WHERE status = 'running';
