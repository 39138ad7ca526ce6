"""Research on market data: Bybit's archives imported as recordings, backtests through the
bot's own engine and the simulator's matching engine, and sweeps of settings over local
processes or a Dask cluster (README "Research")."""
