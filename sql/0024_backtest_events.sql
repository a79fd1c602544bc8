-- What a backtest refused to do and why: blocked rebalances (risk limits, optimizer failures,
-- an empty universe) and orders that lapsed because the symbol had no bar.
CREATE TABLE backtest_events (
    run_key       text NOT NULL REFERENCES backtest_runs ON DELETE CASCADE,
    event_no      integer NOT NULL,
    session_date  date NOT NULL,
    event         text NOT NULL,
    reason        text NOT NULL,
    PRIMARY KEY (run_key, event_no)
);
