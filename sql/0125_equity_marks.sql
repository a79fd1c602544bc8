-- The realized equity curve's points already valued (risk/pnl.py), so the gate and intraday
-- risk value only the sessions after the last one still valid instead of the whole history.
-- A mark is valid while what it rests on is unchanged: the same initial cash, the same fills
-- dated on or before its session (their count and cash flows) and no bar written since
-- (the latest bars.ingested_at, read through the index below).
CREATE TABLE equity_marks (
    session_date  date             PRIMARY KEY,
    equity        double precision NOT NULL,  -- USD at the session's close
    initial_cash  double precision NOT NULL,  -- USD
    fills         integer          NOT NULL,  -- fills dated on or before the session
    fills_cash    double precision NOT NULL,  -- USD: their cash flows summed
    bars_version  timestamptz      NOT NULL   -- max(bars.ingested_at) when valued
);
CREATE INDEX bars_ingested_at_idx ON bars (ingested_at);
