"""The market-data task: public WebSocket -> local book -> the coalescing feed.

A trio channel hop costs more than decoding a delta and applying it to the book, so
each data frame is decoded and applied right in the socket reader's task
(``WsConnection.deliver_to`` with ``_ToFeed``, through the stream's
``bybit.marketdata.MarketData``) and the result goes straight into the ``MarketFeed``
mailbox: at most one hop from socket to decision, with the latest book winning when
the strategy lags (or a socket read brings a burst). A frame that finds the strategy
idle is decided on in the reader's task itself (``MarketFeed.deliver_to``): no hop.
Per frame there is no logging and no Decimal: at Bybit's 20 ms book
pushes across a burst, either would cost more than the decision itself. This task
keeps the rest: symbol switches, book re-requests, and the connection markers.

It follows one symbol at a time. A switch (a symbol on ``subscriptions``) unsubscribes
the old topics, starts an empty book and subscribes the new ones; frames of the old
symbol still in flight are dropped by the protocol, and the engine ignores a book of a
symbol it did not select too, so a late frame can never be taken for the new symbol's
market. A book that turns invalid is re-requested by the stream; a dropped connection
invalidates it, and the engine is shown the invalid top so entries stop.

A gap in the public data (a reconnect, or book frames lost and re-requested) is also
reported through ``on_reconnect`` / ``on_gap``: the bot turns both into
``Resync(market_gap=True)``, so the engine clears its trade window instead of taking
the first trade after the gap for momentum.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from ..bybit.parse import ParseStats
from ..bybit.streams import PublicStream
from ..bybit.ws import Connected, ConnectFn, Disconnected, WsOptions, WsPolicy, open_ws
from ..bybit.wsfast import wsproto_connect
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


class _ToFeed:
    """The frame sink run by the socket reader: protocol (decode + book) -> feed."""

    __slots__ = ("_conn", "_feed", "_market", "_metrics", "_now", "_stream")

    def __init__(self, stream: PublicStream, feed: MarketFeed, metrics: Metrics) -> None:
        self._stream = stream
        self._conn = stream.conn
        self._market = stream.market
        self._feed = feed
        self._metrics = metrics
        # the run's clock: trio.current_time without its two lookups per frame
        self._now = trio.lowlevel.current_clock().current_time

    def frame(self, raw: str | bytes) -> None:
        stream = self._stream
        received_at = stream.received_at = self._now()
        market = self._market
        event = market.frame(raw)
        if event is not None:
            if type(event) is BookUpdate:
                self._metrics.book_updates += 1
            else:
                self._metrics.trade_messages += 1
            # more frames of this read follow: the feed keeps this one (a burst coalesces)
            self._feed.offer(event, received_at, self._conn.more)
        if market.resync_due:
            stream.wake_resyncs()  # run_resyncs re-requests the book

    def dropped(self, reason: str) -> None:
        self._stream.dropped(reason)


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
    policy = policy or WsPolicy()
    if connect is None:
        # the public stream's own connection: no trio-websocket reader task and channel
        # between the socket and our reader (see bybit.wsfast)
        connect = wsproto_connect(policy.connect_timeout_s, policy.disconnect_timeout_s)
    async with open_ws(url, WsOptions(policy=policy, connect=connect, name="public")) as conn:
        # both streams count into the one shared metric, as each failure happens
        stats = ParseStats(name="public", on_error=metrics.count_parse_error)
        stream = PublicStream(conn, stats=stats)
        conn.deliver_to(_ToFeed(stream, feed, metrics))
        async with trio.open_nursery() as nursery:

            async def lost_frames() -> None:
                if on_gap is not None:
                    await on_gap("public book frames lost: book re-requested")

            nursery.start_soon(stream.run_resyncs, lost_frames)
            nursery.start_soon(_follow, stream, subscriptions, instruments)
            task_status.started()
            async for event in stream:  # frames come here only before deliver_to
                if isinstance(event, BookUpdate):
                    metrics.book_updates += 1
                    feed.book_update(event, stream.received_at)
                elif isinstance(event, TradeTicks):
                    metrics.trade_messages += 1
                    feed.trade_ticks(event, stream.received_at)
                elif isinstance(event, Disconnected):
                    logger.warning("public stream dropped: {}", event.reason)
                    top = stream.book.top() if stream.book is not None else None
                    if top is not None:
                        feed.book(top, trio.current_time())  # tells the engine: invalid
                elif isinstance(event, Connected) and event.reconnect:
                    logger.info("public stream reconnected (connection #{})", event.count)
                    await on_reconnect("public stream reconnected")
