"""Execution: the orders ledger, brokers behind one Protocol, reconciliation."""
