-- A symbol's bars by session: the latest close on or before a date (one index probe per
-- symbol instead of reading its whole history) and a trailing window of closes. bars' key
-- is (symbol, ts); session_date alone has its own index. Works on the partitioned table and
-- on a TimescaleDB hypertable alike (the index is made on every partition or chunk).
CREATE INDEX bars_symbol_session_idx ON bars (symbol, session_date);
