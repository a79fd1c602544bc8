-- Execution (issue #5): the orders ledger's state machine, fills taken from the broker's
-- cumulative fill, the dead-letter table and the reconciliation log.

-- What the broker reported filled so far (shares) and at what average price (USD).
ALTER TABLE orders
    ADD COLUMN filled_qty        numeric          NOT NULL DEFAULT 0,
    ADD COLUMN filled_avg_price  double precision,
    ADD COLUMN attempts          integer          NOT NULL DEFAULT 0,  -- sends tried
    ADD COLUMN last_error        text;

-- Orders filled before this migration: their filled quantity from their fills.
UPDATE orders o SET filled_qty = f.qty
FROM (SELECT client_order_id, sum(qty) AS qty FROM fills GROUP BY client_order_id) f
WHERE f.client_order_id = o.client_order_id;

-- The ledger's states (pipelines/execution/ledger.py holds the allowed transitions).
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'planned', 'submitted', 'accepted', 'partially_filled', 'filled',
    'cancelled', 'rejected', 'expired', 'dead_letter'));

CREATE INDEX order_events_client_order_id_idx ON order_events (client_order_id, id);

-- Orders that failed permanently (403 buying power, 422 bad parameters, ...): one row per
-- order, kept after a retry (retried_at, resolved) as the record of what happened.
CREATE TABLE dead_letter_orders (
    client_order_id  text        PRIMARY KEY REFERENCES orders,
    broker           text        NOT NULL,
    http_status      integer,
    error_code       integer,
    error            text        NOT NULL,
    attempts         integer     NOT NULL,
    failed_at        timestamptz NOT NULL DEFAULT now(),
    retried_at       timestamptz,
    resolved         boolean     NOT NULL DEFAULT false
);

-- Every reconciliation of the ledger with a broker; the latest failed one blocks submission.
CREATE TABLE reconciliations (
    id              bigserial   PRIMARY KEY,
    broker          text        NOT NULL,
    run_id          text,
    ok              boolean     NOT NULL,
    orders_checked  integer     NOT NULL,
    orders_updated  integer     NOT NULL,
    problems        jsonb       NOT NULL DEFAULT '[]',
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliations_broker_idx ON reconciliations (broker, id DESC);
