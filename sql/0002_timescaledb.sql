-- TimescaleDB when the server has it: bars become a hypertable on ts with a columnstore
-- policy. On plain PostgreSQL (the embedded default) this migration records itself and does
-- nothing; native range partitioning of bars comes with the data-layer work (issue #3).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('bars', 'ts', chunk_time_interval => interval '30 days',
                                  migrate_data => true, if_not_exists => true);
    END IF;
END
$$;
