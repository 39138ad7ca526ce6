"""Every Bybit v5 REST path the client calls, and the one product category it trades.

Kept apart so the transport, the pacer, the order-entry logic and the facade name an
endpoint the same way without importing each other.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CATEGORY",
    "EXECUTION_LIST",
    "MARKET_INSTRUMENTS",
    "MARKET_ORDERBOOK",
    "MARKET_TICKERS",
    "MARKET_TIME",
    "ORDER_AMEND",
    "ORDER_CANCEL",
    "ORDER_CANCEL_ALL",
    "ORDER_CREATE",
    "ORDER_HISTORY",
    "ORDER_REALTIME",
    "POSITION_CLOSED_PNL",
    "POSITION_LIST",
    "SET_LEVERAGE",
    "TRADING_STOP",
    "WALLET_BALANCE",
]

CATEGORY: Final = "linear"
ORDER_CREATE: Final = "/v5/order/create"
ORDER_AMEND: Final = "/v5/order/amend"
ORDER_CANCEL: Final = "/v5/order/cancel"
ORDER_CANCEL_ALL: Final = "/v5/order/cancel-all"
ORDER_REALTIME: Final = "/v5/order/realtime"
ORDER_HISTORY: Final = "/v5/order/history"
SET_LEVERAGE: Final = "/v5/position/set-leverage"
POSITION_LIST: Final = "/v5/position/list"
TRADING_STOP: Final = "/v5/position/trading-stop"
POSITION_CLOSED_PNL: Final = "/v5/position/closed-pnl"
MARKET_TIME: Final = "/v5/market/time"
MARKET_INSTRUMENTS: Final = "/v5/market/instruments-info"
MARKET_TICKERS: Final = "/v5/market/tickers"
MARKET_ORDERBOOK: Final = "/v5/market/orderbook"
WALLET_BALANCE: Final = "/v5/account/wallet-balance"
EXECUTION_LIST: Final = "/v5/execution/list"
