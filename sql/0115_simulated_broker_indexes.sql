-- The simulated venue's reads that would otherwise scan its whole order history: the orders
-- still to fill, the orders listed since a time (reconciliation) and a session's orders (the
-- backtest's daily trades).
CREATE INDEX sim_broker_orders_accepted_idx ON sim_broker_orders (client_order_id)
    WHERE status = 'accepted';
CREATE INDEX sim_broker_orders_submitted_idx ON sim_broker_orders (submitted_at);
CREATE INDEX sim_broker_orders_session_idx ON sim_broker_orders (session_date);
