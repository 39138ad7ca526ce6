"""Record and replay, Bybit archive import, the backtest venue, backtests and sweeps."""
