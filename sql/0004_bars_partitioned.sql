-- Plain PostgreSQL: bars becomes a table range-partitioned by ts, one partition per calendar
-- year (UTC), plus a default partition so that no row is ever refused for lack of one.
--
-- Why yearly: a daily bar is one row per symbol and session, about 252 rows a symbol a year
-- (126,000 for 500 symbols): a year is a small partition, thirty years are thirty tables
-- (planning stays cheap), and retention by whole years is fine-grained enough for daily data.
-- Partitions ahead of the data are created by pipelines/warehouse/partitions.py, which ingest
-- calls before every load; rows that landed in the default partition are moved out then.
--
-- With TimescaleDB (0002 made bars a hypertable; TimescaleDB chunks it by time itself) this
-- migration records itself and changes nothing.
DO $$
DECLARE
    first_year integer;
    last_year  integer;
    y          integer;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;

    ALTER TABLE bars RENAME TO bars_unpartitioned;
    ALTER TABLE bars_unpartitioned RENAME CONSTRAINT bars_pkey TO bars_unpartitioned_pkey;
    ALTER INDEX bars_session_date_idx RENAME TO bars_unpartitioned_session_date_idx;

    CREATE TABLE bars (
        symbol        text             NOT NULL,
        ts            timestamptz      NOT NULL,  -- bar close time
        session_date  date             NOT NULL,
        open          double precision NOT NULL,
        high          double precision NOT NULL,
        low           double precision NOT NULL,
        close         double precision NOT NULL,
        volume        double precision NOT NULL,
        source        text             NOT NULL,
        ingested_at   timestamptz      NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, ts)  -- holds the partition key, as PostgreSQL requires
    ) PARTITION BY RANGE (ts);
    CREATE INDEX bars_session_date_idx ON bars (session_date);
    CREATE TABLE bars_default PARTITION OF bars DEFAULT;

    SELECT extract(year FROM min(ts) AT TIME ZONE 'UTC')::integer,
           extract(year FROM max(ts) AT TIME ZONE 'UTC')::integer
      INTO first_year, last_year
      FROM bars_unpartitioned;
    IF first_year IS NOT NULL THEN
        FOR y IN first_year .. last_year LOOP
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF bars FOR VALUES FROM (%L) TO (%L)',
                'bars_y' || y,
                make_timestamptz(y, 1, 1, 0, 0, 0, 'UTC'),
                make_timestamptz(y + 1, 1, 1, 0, 0, 0, 'UTC'));
        END LOOP;
    END IF;

    INSERT INTO bars SELECT * FROM bars_unpartitioned;
    DROP TABLE bars_unpartitioned;
END
$$;
