"""Walk-forward backtesting: the live path (features, models, optimizer, risk limits, order
sizing, fill costs) replayed in memory over history, the clock moved by the engine."""
