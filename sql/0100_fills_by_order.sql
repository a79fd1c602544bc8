-- An order's fills: the ledger sums them per batch of broker reports, reconciliation and the
-- backtest join them to their orders. Without this index each of those scanned every fill.
CREATE INDEX fills_client_order_id_idx ON fills (client_order_id);
