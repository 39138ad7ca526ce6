"""The market-data task: public WebSocket -> local book -> one try-send to the strategy.

A trio channel hop costs more than parsing a delta and applying it to the book, so
this task does both itself and hands the strategy one compact ``BookTop`` per frame:
one hop from socket to decision, no per-message logging, no Decimal (DESIGN section 4).

It follows one symbol at a time. A switch (a symbol on ``subscriptions``) unsubscribes
the old topics, starts an empty book and subscribes the new ones; frames of the old
symbol still in flight are dropped here, and the engine ignores them too (seed fix 4).
A book that turns invalid (gap, crossed, delta before snapshot) is re-requested at
once; a reconnect invalidates it until the resubscription's snapshot arrives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio
from loguru import logger

from ..bybit.parse import BookMessage, ParseStats, TradesMessage, parse_message
from ..bybit.ws import Connected, ConnectFn, Disconnected, WsConnection, WsPolicy, open_ws
from ..core.book import BookStatus, OrderBook
from ..core.model import Instrument
from .feed import MarketFeed
from .metrics import Metrics

__all__ = ["MarketData", "run_market_data"]

#: orderbook.50 pushes every 20 ms on linear: deep enough for sizing, cheap to apply
BOOK_DEPTH = 50


def topics_for(symbol: str) -> list[str]:
    """Public topics the bot needs for one symbol."""
    return [f"orderbook.{BOOK_DEPTH}.{symbol}", f"publicTrade.{symbol}"]


@attrs.define
class MarketData:
    """The per-connection state: current symbol and its book."""

    conn: WsConnection
    feed: MarketFeed
    metrics: Metrics
    instruments: dict[str, Instrument]
    stats: ParseStats = attrs.field(factory=lambda: ParseStats(name="public"))
    symbol: str | None = None
    book: OrderBook | None = None

    async def switch(self, symbol: str) -> None:
        """Follow ``symbol`` from now on."""
        if symbol == self.symbol:
            return
        instrument = self.instruments.get(symbol)
        if instrument is None:
            logger.bind(symbol=symbol).error("market data: no instrument rules; not subscribing")
            return
        old = self.symbol
        if old is not None:
            await self.conn.unsubscribe(topics_for(old))
        self.symbol = symbol
        self.book = OrderBook(symbol, instrument.tick_size)
        await self.conn.subscribe(topics_for(symbol))
        logger.bind(symbol=symbol).info("market data: following {} (was {})", symbol, old or "none")

    async def on_frame(self, raw: str | bytes) -> None:
        """Parse one frame and apply it; the hot path."""
        received_at = trio.current_time()
        before = self.stats.errors
        msg = parse_message(raw, self.stats)
        # the count is shared with the private stream (and survives reconnects): add
        self.metrics.parse_errors += self.stats.errors - before
        if msg is None:
            return
        book = self.book
        if isinstance(msg, BookMessage):
            if book is None or msg.symbol != self.symbol:
                return  # a frame of the symbol we just left
            self.metrics.book_updates += 1
            status = book.apply(msg.kind, msg.bids, msg.asks, msg.update_id, msg.ts_ms)
            if status is BookStatus.INVALIDATED:
                await self._repair(book)
            top = book.top()
            if top is not None:
                self.feed.book(top, received_at)
        elif isinstance(msg, TradesMessage):
            if msg.symbol != self.symbol:
                return
            self.metrics.trade_messages += 1
            self.feed.trades(msg.symbol, msg.trades, received_at)

    async def _repair(self, book: OrderBook) -> None:
        logger.bind(symbol=book.symbol).warning(
            "book invalid ({}): resubscribing for a fresh snapshot", book.invalid_reason
        )
        await self.conn.resubscribe([f"orderbook.{BOOK_DEPTH}.{book.symbol}"])

    def on_disconnect(self, reason: str) -> None:
        """The stream dropped: the book is unknown until the next snapshot."""
        if self.book is not None:
            self.book.invalidate(f"stream dropped: {reason}")
            top = self.book.top()
            if top is not None:
                self.feed.book(top, trio.current_time())  # tells the engine: invalid


async def run_market_data(
    url: str,
    subscriptions: trio.MemoryReceiveChannel[str],
    feed: MarketFeed,
    instruments: dict[str, Instrument],
    on_reconnect: Callable[[str], Awaitable[None]],
    metrics: Metrics,
    *,
    policy: WsPolicy | None = None,
    connect: ConnectFn | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the public stream until cancelled; symbols to follow arrive on ``subscriptions``."""
    async with open_ws(url, policy=policy or WsPolicy(), connect=connect, name="public") as conn:
        state = MarketData(conn=conn, feed=feed, metrics=metrics, instruments=instruments)

        async def follow() -> None:
            async with subscriptions:
                async for symbol in subscriptions:
                    await state.switch(symbol)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            task_status.started()
            async for item in conn:
                if isinstance(item, str | bytes):
                    await state.on_frame(item)
                elif isinstance(item, Disconnected):
                    logger.warning("public stream dropped: {}", item.reason)
                    state.on_disconnect(item.reason)
                elif isinstance(item, Connected) and item.reconnect:
                    logger.info("public stream reconnected (connection #{})", item.count)
                    await on_reconnect("public stream reconnected")
