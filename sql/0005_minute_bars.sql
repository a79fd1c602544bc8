-- Minute bars and the daily bars derived from them.
--
-- minute_bars: one row per (symbol, minute), ts = the minute's close (UTC), regular-hours
-- prices in USD as the vendor reports them, volume in shares. daily_from_minute: per symbol
-- and UTC day (a regular NYSE session lies inside one UTC day), first open, max high, min low,
-- last close, total volume and the number of minutes seen.
--
-- Plain PostgreSQL: minute_bars is range-partitioned by ts into calendar months (UTC): about
-- 390 rows a symbol a session, 4 million rows a month for 500 symbols, so a month is the
-- partition size a year is for daily bars. A default partition catches what no partition
-- covers; pipelines/warehouse/partitions.py creates months ahead and drops expired ones.
-- daily_from_minute is a plain view (date_bin works on both backends): always current.
--
-- TimescaleDB: minute_bars is a hypertable (one-day chunks) in the columnstore after 7 days,
-- bars moves to the columnstore after 90 days, and daily_from_minute is a continuous aggregate
-- refreshed hourly over the last 30 days, read in real time (materialized buckets plus the raw
-- minutes not yet materialized, so it answers as the plain view does). Retention of minute_bars (the retention job,
-- MINUTE_BARS_RETENTION_DAYS) is refused at 30 days or less, so it never reaches that window,
-- and the aggregate keeps the days whose minutes were dropped.
CREATE TABLE minute_bars (
    symbol        text             NOT NULL,
    ts            timestamptz      NOT NULL,  -- the minute's close
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,
    source        text             NOT NULL,
    ingested_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts)
) PARTITION BY RANGE (ts);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- A hypertable cannot be made from a partitioned table: start again as a plain one.
        DROP TABLE minute_bars;
        CREATE TABLE minute_bars (
            symbol        text             NOT NULL,
            ts            timestamptz      NOT NULL,
            open          double precision NOT NULL,
            high          double precision NOT NULL,
            low           double precision NOT NULL,
            close         double precision NOT NULL,
            volume        double precision NOT NULL,
            source        text             NOT NULL,
            ingested_at   timestamptz      NOT NULL DEFAULT now(),
            PRIMARY KEY (symbol, ts)
        );
        PERFORM create_hypertable('minute_bars', 'ts', chunk_time_interval => interval '1 day');
        EXECUTE 'ALTER TABLE minute_bars SET (timescaledb.enable_columnstore, '
                'timescaledb.segmentby = ''symbol'', timescaledb.orderby = ''ts DESC'')';
        EXECUTE 'CALL add_columnstore_policy(''minute_bars'', after => interval ''7 days'')';
        EXECUTE 'ALTER TABLE bars SET (timescaledb.enable_columnstore, '
                'timescaledb.segmentby = ''symbol'', timescaledb.orderby = ''ts DESC'')';
        EXECUTE 'CALL add_columnstore_policy(''bars'', after => interval ''90 days'')';
        EXECUTE $view$
            CREATE MATERIALIZED VIEW daily_from_minute
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT symbol,
                   time_bucket(interval '1 day', ts) AS day,
                   first(open, ts)  AS open,
                   max(high)        AS high,
                   min(low)         AS low,
                   last(close, ts)  AS close,
                   sum(volume)      AS volume,
                   count(*)         AS minutes
              FROM minute_bars
             GROUP BY symbol, time_bucket(interval '1 day', ts)
              WITH NO DATA
        $view$;
        PERFORM add_continuous_aggregate_policy('daily_from_minute',
            start_offset => interval '30 days', end_offset => interval '1 hour',
            schedule_interval => interval '1 hour');
    ELSE
        CREATE TABLE minute_bars_default PARTITION OF minute_bars DEFAULT;
        CREATE VIEW daily_from_minute AS
        SELECT symbol,
               date_bin(interval '1 day', ts, timestamptz '2000-01-01 00:00:00+00') AS day,
               (array_agg(open ORDER BY ts))[1]        AS open,
               max(high)                               AS high,
               min(low)                                AS low,
               (array_agg(close ORDER BY ts DESC))[1]  AS close,
               sum(volume)                             AS volume,
               count(*)                                AS minutes
          FROM minute_bars
         GROUP BY 1, 2;
    END IF;
END
$$;
