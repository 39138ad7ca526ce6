"""The messages ``scalper.bybit`` hands to its callers, one type per kind of frame.

The stream parser (``parse``) and the REST row parsers (``rows``) both build these, so a
consumer (the streams, the recorder, the backtest, the REST facade) sees the same type
whether a book or a wallet came over the WebSocket or over REST. Private pushes carry
``scalper.core.model`` types; public market data stays close to the wire (book levels as
strings, ticker and trade numbers as floats) because it is read once per frame and never
sent back in an order.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from scalper.core.model import Fill, OrderUpdate, PositionSnapshot, TradeTicks

__all__ = [
    "BookMessage",
    "CoinBalance",
    "ControlMessage",
    "FillsMessage",
    "Message",
    "OrdersMessage",
    "PositionsMessage",
    "Ticker",
    "TickerMessage",
    "TradesMessage",
    "WalletBalance",
    "WalletMessage",
]


@attrs.frozen(slots=True)
class BookMessage:
    """One order-book frame (or the REST book), levels left as wire strings.

    ``bids``/``asks`` are ``[[price, size], ...]`` exactly as received, fed as-is to
    ``OrderBook.apply(kind, bids, asks, update_id, ts_ms)``.
    """

    symbol: str
    kind: str  #: "snapshot" or "delta"
    bids: list[list[str]]
    asks: list[list[str]]
    update_id: int
    seq: int
    ts_ms: int


#: Public trades of one symbol, oldest first: the engine's own event, so the market-data
#: protocol hands a parsed trade frame to the engine as it is.
TradesMessage = TradeTicks


@attrs.frozen(kw_only=True)
class Ticker:
    """A linear ticker (market data: floats). ``None`` = not in this message.

    REST rows and stream snapshots carry every field; stream deltas only the changed
    ones, so merge them with ``merged``.
    """

    symbol: str
    last_price: float | None = None
    mark_price: float | None = None
    price_24h_pcnt: float | None = None
    turnover_24h: float | None = None
    volume_24h: float | None = None
    bid1_price: float | None = None
    bid1_size: float | None = None
    ask1_price: float | None = None
    ask1_size: float | None = None
    funding_rate: float | None = None

    def merged(self, delta: Ticker) -> Ticker:
        """This ticker with the fields present in ``delta`` replaced."""
        changes = {
            f.name: getattr(delta, f.name)
            for f in attrs.fields(Ticker)
            if getattr(delta, f.name) is not None
        }
        return attrs.evolve(self, **changes)


@attrs.frozen(slots=True)
class TickerMessage:
    """A ``tickers.{symbol}`` push."""

    kind: str  #: "snapshot" or "delta"
    ticker: Ticker
    ts_ms: int


@attrs.frozen(kw_only=True)
class CoinBalance:
    """One coin of the unified wallet."""

    coin: str
    equity: Decimal
    wallet_balance: Decimal
    unrealised_pnl: Decimal
    cum_realised_pnl: Decimal
    locked: Decimal


@attrs.frozen(kw_only=True)
class WalletBalance:
    """The unified account's balances (USD totals, and per coin)."""

    account_type: str
    total_equity: Decimal
    total_wallet_balance: Decimal
    total_available_balance: Decimal
    total_perp_upl: Decimal
    coins: tuple[CoinBalance, ...]

    def coin(self, name: str) -> CoinBalance | None:
        """The balance of one coin, or None if the account holds none."""
        return next((c for c in self.coins if c.coin == name), None)


@attrs.frozen(slots=True)
class OrdersMessage:
    """An ``order`` push: one or more order updates."""

    updates: tuple[OrderUpdate, ...]


@attrs.frozen(slots=True)
class FillsMessage:
    """An ``execution`` (or ``execution.fast``) push: trade fills only."""

    fills: tuple[Fill, ...]


@attrs.frozen(slots=True)
class PositionsMessage:
    """A ``position`` push."""

    positions: tuple[PositionSnapshot, ...]


@attrs.frozen(slots=True)
class WalletMessage:
    """A ``wallet`` push."""

    wallets: tuple[WalletBalance, ...]


@attrs.frozen(kw_only=True)
class ControlMessage:
    """A reply to one of our ops: ping/pong, subscribe, unsubscribe, auth."""

    op: str
    success: bool | None = None
    ret_msg: str = ""
    req_id: str = ""
    conn_id: str = ""

    @property
    def is_pong(self) -> bool:
        """Public pong is ``op="ping", ret_msg="pong"``; private pong is ``op="pong"``."""
        return self.op == "pong" or (self.op == "ping" and self.ret_msg == "pong")


Message = (
    BookMessage
    | TradesMessage
    | TickerMessage
    | OrdersMessage
    | FillsMessage
    | PositionsMessage
    | WalletMessage
    | ControlMessage
)
