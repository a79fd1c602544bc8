-- Splits and cash dividends by ex-date. Bars stay as traded (unadjusted); adjusted series are
-- derived from this table (pipelines/warehouse/corporate_actions.py, CRSP-style factors).
CREATE TABLE corporate_actions (
    symbol   text             NOT NULL,
    ex_date  date             NOT NULL,  -- first NYSE session trading without the split/dividend
    kind     text             NOT NULL CHECK (kind IN ('split', 'dividend')),
    -- split: new shares per old share (2.0 for 2-for-1, 0.1 for 1-for-10);
    -- dividend: US dollars of cash per share as paid (not restated for later splits)
    value    double precision NOT NULL CHECK (value > 0 AND value < 'Infinity'),
    source   text             NOT NULL,
    PRIMARY KEY (symbol, ex_date, kind)
);
