"""The market-data task: public WebSocket -> local book -> one try-send to the strategy.

A trio channel hop costs more than parsing a delta and applying it to the book, so
this task does both itself (through ``bybit.streams.PublicStream``) and hands the
strategy one compact ``BookTop`` per frame: one hop from socket to decision, no
per-message logging, no Decimal (DESIGN section 4).

It follows one symbol at a time. A switch (a symbol on ``subscriptions``) unsubscribes
the old topics, starts an empty book and subscribes the new ones; frames of the old
symbol still in flight are dropped by the stream, and the engine ignores them too
(seed fix 4). A book that turns invalid is re-requested by the stream; a dropped
connection invalidates it, and the engine is shown the invalid top so entries stop.

A gap in the public data (a reconnect, or book frames lost and re-requested) is also
reported through ``on_reconnect`` / ``on_gap``: the bot turns both into
``Resync(market_gap=True)``, so the engine clears its trade window instead of taking
the first trade after the gap for momentum (issue 9).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from ..bybit.parse import ParseStats
from ..bybit.streams import PublicStream
from ..bybit.ws import Connected, ConnectFn, Disconnected, WsPolicy, open_ws
from ..core.model import BookUpdate, Instrument, TradeTicks
from .feed import MarketFeed
from .metrics import Metrics

__all__ = ["run_market_data"]


async def _follow(
    stream: PublicStream,
    subscriptions: trio.MemoryReceiveChannel[str],
    instruments: dict[str, Instrument],
) -> None:
    async with subscriptions:
        async for symbol in subscriptions:
            instrument = instruments.get(symbol)
            if instrument is None:
                logger.bind(symbol=symbol).error("market data: no instrument rules; not following")
                continue
            await stream.follow(symbol, instrument.tick_size)


async def run_market_data(
    url: str,
    subscriptions: trio.MemoryReceiveChannel[str],
    feed: MarketFeed,
    instruments: dict[str, Instrument],
    on_reconnect: Callable[[str], Awaitable[None]],
    metrics: Metrics,
    *,
    on_gap: Callable[[str], Awaitable[None]] | None = None,
    policy: WsPolicy | None = None,
    connect: ConnectFn | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the public stream until cancelled; symbols to follow arrive on ``subscriptions``."""
    async with open_ws(url, policy=policy or WsPolicy(), connect=connect, name="public") as conn:
        # both streams count into the one shared metric, as each failure happens
        stats = ParseStats(name="public", on_error=metrics.count_parse_error)
        stream = PublicStream(conn, stats=stats)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_follow, stream, subscriptions, instruments)
            task_status.started()
            resyncs = stream.resyncs
            async for event in stream:
                if stream.resyncs != resyncs:
                    resyncs = stream.resyncs
                    if on_gap is not None:
                        await on_gap("public book frames lost: book re-requested")
                if isinstance(event, BookUpdate):
                    metrics.book_updates += 1
                    feed.book(event.top, stream.received_at)
                elif isinstance(event, TradeTicks):
                    metrics.trade_messages += 1
                    feed.trades(event.symbol, event.trades, stream.received_at)
                elif isinstance(event, Disconnected):
                    logger.warning("public stream dropped: {}", event.reason)
                    top = stream.book.top() if stream.book is not None else None
                    if top is not None:
                        feed.book(top, trio.current_time())  # tells the engine: invalid
                elif isinstance(event, Connected) and event.reconnect:
                    logger.info("public stream reconnected (connection #{})", event.count)
                    await on_reconnect("public stream reconnected")
