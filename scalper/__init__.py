"""scalper: a Bybit v5 scalping bot for linear USDT perpetuals, on trio."""

__version__ = "0.1.0"
