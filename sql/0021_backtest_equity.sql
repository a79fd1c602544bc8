-- Daily equity of a backtest (USD at the session's close) and what moved it.
CREATE TABLE backtest_equity (
    run_key           text             NOT NULL REFERENCES backtest_runs ON DELETE CASCADE,
    session_date      date             NOT NULL,
    equity            double precision NOT NULL,
    cash              double precision NOT NULL,
    daily_return      double precision NOT NULL,  -- simple, after costs
    benchmark_return  double precision NOT NULL,  -- equal-weighted universe, close to close
    gross_exposure    double precision NOT NULL,  -- fractions of equity
    net_exposure      double precision NOT NULL,
    turnover          double precision NOT NULL,  -- traded notional / previous equity
    costs             double precision NOT NULL,  -- USD: spread, slippage, impact, fees, carry
    positions         integer          NOT NULL,
    rebalanced        boolean          NOT NULL,
    PRIMARY KEY (run_key, session_date)
);
