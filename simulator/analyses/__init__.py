"""The analyses built on the engine: compare, backtest, track, plan."""
