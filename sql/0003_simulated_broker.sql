-- The simulated broker's own order book: what "the broker" knows, separate from our ledger,
-- so reconciliation compares two records as it does with Alpaca. Ids are unique per broker,
-- as Alpaca keeps client_order_id unique forever.
CREATE TABLE sim_broker_orders (
    broker_order_id  text        PRIMARY KEY,
    client_order_id  text        NOT NULL UNIQUE,
    symbol           text        NOT NULL,
    side             text        NOT NULL,
    qty              numeric     NOT NULL,
    session_date     date        NOT NULL,  -- the session whose open fills it (market-on-open)
    status           text        NOT NULL,  -- accepted | filled
    submitted_at     timestamptz NOT NULL DEFAULT now()
);
