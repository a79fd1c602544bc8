-- Holdings of a backtest at each session's close, as fractions of equity.
CREATE TABLE backtest_weights (
    run_key       text             NOT NULL REFERENCES backtest_runs ON DELETE CASCADE,
    session_date  date             NOT NULL,
    symbol        text             NOT NULL,
    weight        double precision NOT NULL,
    PRIMARY KEY (run_key, session_date, symbol)
);
