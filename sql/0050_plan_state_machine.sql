-- Issue 14 (money-path state): a plan's status only moves forward, and the orders it makes
-- are computed once, when the risk gate approves it, and stored here (frozen).
-- pipelines/portfolio/plan_state.py holds the allowed transitions; every change is an
-- UPDATE ... WHERE status = <expected> whose row count is checked.
ALTER TABLE plans ADD CONSTRAINT plans_status_check CHECK (status IN (
    'proposed', 'approved', 'blocked', 'submitted', 'superseded'));
ALTER TABLE plans ADD COLUMN orders_frozen_at timestamptz;  -- NULL: no orders frozen yet

-- The plan's orders as the gate approved them (whole shares; sells first at submission).
CREATE TABLE plan_orders (
    strategy         text    NOT NULL,
    session_date     date    NOT NULL,
    plan_version     integer NOT NULL,
    client_order_id  text    NOT NULL UNIQUE,
    symbol           text    NOT NULL,
    side             text    NOT NULL CHECK (side IN ('buy', 'sell')),
    qty              numeric NOT NULL CHECK (qty > 0),
    PRIMARY KEY (strategy, session_date, plan_version, symbol, side),
    FOREIGN KEY (strategy, session_date, plan_version) REFERENCES plans
);
