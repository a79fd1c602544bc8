-- Simulated fills of a backtest: market-on-open, priced by pipelines.execution.costs.
CREATE TABLE backtest_trades (
    run_key          text             NOT NULL REFERENCES backtest_runs ON DELETE CASCADE,
    trade_no         integer          NOT NULL,  -- order of execution within the run
    session_date     date             NOT NULL,
    symbol           text             NOT NULL,
    side             text             NOT NULL CHECK (side IN ('buy', 'sell')),
    qty              numeric          NOT NULL,  -- shares
    price            double precision NOT NULL,  -- fill price, USD
    reference_price  double precision NOT NULL,  -- the session's open, USD
    commission       double precision NOT NULL,  -- USD
    cost             double precision NOT NULL,  -- USD: |price - reference| * qty + commission
    PRIMARY KEY (run_key, trade_no)
);
