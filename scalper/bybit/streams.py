"""Typed streams on top of ``WsConnection``: one symbol's L2 book, and our private pushes.

``PublicStream`` drives the market-data protocol (``bybit.marketdata.MarketData``: the
book of the symbol it follows, and when to re-request it) on a connection and yields
compact events::

    async with open_public_stream(url, "BTCUSDT", tick_size) as stream:
        async for event in stream:   # BookUpdate | TradeTicks | Connected | Disconnected
            ...

* A book that turns invalid (delta before snapshot, ``u`` going backwards, crossed,
  malformed level) is re-requested at once (unsubscribe + subscribe: Bybit answers with
  a fresh snapshot); until then the book drops deltas and reports ``valid=False``.
* A dropped connection invalidates the book and yields the ``Disconnected`` marker
  (not a ``BookUpdate``): the caller must stop entries on it. The next book update
  comes from the fresh snapshot that the reconnect's resubscription brings.
* ``follow(symbol, tick_size)`` switches symbol: unsubscribe the old topics, start an
  empty book, subscribe the new ones; late frames of the old symbol are ignored.

``PrivateStream`` yields ``OrderUpdate``, ``Fill``, ``PositionSnapshot`` and
``WalletBalance`` (plus the connection markers), with repeated pushes removed: a fill by
its ``execId``, an order update by ``(orderId, status, cumExecQty, updatedTime, price,
qty, leavesQty)`` (an amend within the same millisecond changes only the last three).

Both count unparseable frames in ``stats`` (a ``ParseStats``) and never raise on them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from decimal import Decimal

import attrs
import trio
from loguru import logger

from scalper.core.book import OrderBook
from scalper.core.model import BookUpdate, Fill, OrderUpdate, PositionSnapshot, TradeTicks

from .auth import Credentials
from .marketdata import BOOK_DEPTH, MarketData, invalidate_on_lost_frame, public_topics
from .parse import (
    FillsMessage,
    OrdersMessage,
    ParseStats,
    PositionsMessage,
    WalletBalance,
    WalletMessage,
    parse_message,
)
from .ws import Connected, Disconnected, WsConnection, WsOptions, open_ws

__all__ = [
    "BOOK_DEPTH",
    "PRIVATE_TOPICS",
    "PrivateEvent",
    "PrivateStream",
    "PublicEvent",
    "PublicStream",
    "SeenSet",
    "invalidate_on_lost_frame",
    "open_private_stream",
    "open_public_stream",
    "public_topics",
]

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
_DEFAULT_WS = WsOptions()  # frozen: sharing is safe

PublicEvent = BookUpdate | TradeTicks | Connected | Disconnected
PrivateEvent = OrderUpdate | Fill | PositionSnapshot | WalletBalance | Connected | Disconnected


class SeenSet:
    """The last ``size`` keys seen, for de-duplicating pushes in bounded memory."""

    def __init__(self, size: int = 4096) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def first_time(self, key: Hashable) -> bool:
        """True the first time ``key`` is offered (within the window)."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


class PublicStream:
    """The L2 book and trades of one symbol. Iterate it for ``PublicEvent``s.

    The rules (what a frame does to the book, when to re-request it) are
    ``MarketData``'s; this class carries out its requests on the connection.
    """

    def __init__(
        self, conn: WsConnection, *, depth: int = BOOK_DEPTH, stats: ParseStats | None = None
    ):
        self.conn = conn
        #: the market-data protocol: the book, the symbol, the parse counters
        self.market = MarketData(stats or ParseStats(name="public"), depth=depth)
        #: times the book was re-requested because it turned invalid
        self.resyncs = 0
        #: trio time the last frame arrived, before parsing: tick-to-decision starts here
        self.received_at = 0.0
        self._resync_wanted = trio.Event()

    @property
    def stats(self) -> ParseStats:
        """Unparseable public frames, by kind."""
        return self.market.stats

    @property
    def symbol(self) -> str | None:
        """The symbol followed (None before the first ``follow``)."""
        return self.market.symbol

    @property
    def book(self) -> OrderBook | None:
        """The followed symbol's book."""
        return self.market.book

    @property
    def last_seq(self) -> int:
        """``seq`` (Bybit's cross sequence) of the last book message applied."""
        return self.market.last_seq

    def topics(self, symbol: str) -> list[str]:
        """The topics followed for ``symbol``."""
        return self.market.topics(symbol)

    async def follow(self, symbol: str, tick_size: Decimal | str) -> None:
        """Switch to ``symbol`` (no-op if already following it)."""
        market = self.market
        old = market.symbol
        if symbol == old:
            return
        if old is not None:
            await self.conn.unsubscribe(market.topics(old))
        await self.conn.subscribe(market.follow(symbol, tick_size))
        logger.bind(symbol=symbol).info("public stream: following {} (was {})", symbol, old)

    def __aiter__(self) -> PublicStream:
        return self

    async def __anext__(self) -> PublicEvent:
        while True:
            item = await self.conn.__anext__()
            self.received_at = trio.current_time()
            if isinstance(item, str | bytes):
                event = self.handle(item)
                if self.market.resync_due:
                    await self._resync()
                if event is not None:
                    return event
            elif isinstance(item, Disconnected):
                self.dropped(item.reason)
                return item
            else:
                return item

    def handle(self, raw: str | bytes) -> BookUpdate | TradeTicks | None:
        """Decode one frame and apply it to the book; the event for the strategy, or None.

        Synchronous, so it can run in the socket reader's task (``WsConnection.deliver_to``)
        with no channel hop in between; a book that turned invalid is then re-requested
        by ``run_resyncs``, woken by ``wake_resyncs``.
        """
        event = self.market.frame(raw)
        if self.market.resync_due:
            self.wake_resyncs()
        return event

    def dropped(self, reason: str) -> BookUpdate | None:
        """The connection was lost: the book misses whatever happened meanwhile. The
        invalid top, for the engine (None before any book)."""
        return self.market.invalidate(f"stream dropped: {reason}")

    def wake_resyncs(self) -> None:
        """A frame turned the book invalid: let ``run_resyncs`` re-request it."""
        self._resync_wanted.set()

    async def run_resyncs(self, on_resync: Callable[[], Awaitable[None]] | None = None) -> None:
        """Re-request the book whenever a frame made it invalid (for the reader-task
        mode, where ``handle`` cannot await). Runs until cancelled.

        ``on_resync`` is awaited after each re-request: frames were lost, and what was
        built from them (the engine's trade window) is suspect too.
        """
        while True:
            await self._resync_wanted.wait()
            self._resync_wanted = trio.Event()
            if self.market.resync_due:
                before = self.resyncs
                await self._resync()
                if on_resync is not None and self.resyncs != before:
                    await on_resync()

    async def _resync(self) -> None:
        action = self.market.take_resubscribe()
        if action is None:
            return
        self.resyncs += 1
        logger.bind(symbol=self.market.symbol).warning(
            "book invalid ({}): resubscribing for a fresh snapshot", action.reason
        )
        await self.conn.resubscribe(list(action.topics))


class PrivateStream:
    """Our order, execution, position and wallet pushes, de-duplicated."""

    def __init__(
        self, conn: WsConnection, *, stats: ParseStats | None = None, window: int = 4096
    ) -> None:
        self.conn = conn
        self.stats = stats or ParseStats(name="private")
        self._seen = SeenSet(window)
        self._pending: deque[PrivateEvent] = deque()
        #: repeated pushes dropped
        self.duplicates = 0

    def __aiter__(self) -> PrivateStream:
        return self

    async def __anext__(self) -> PrivateEvent:
        while not self._pending:
            item = await self.conn.__anext__()
            if isinstance(item, Connected | Disconnected):
                return item
            self._frame(item)
        return self._pending.popleft()

    def _first(self, key: Hashable) -> bool:
        if self._seen.first_time(key):
            return True
        self.duplicates += 1
        return False

    def _frame(self, raw: str | bytes) -> None:
        msg = parse_message(raw, self.stats)
        out = self._pending
        if isinstance(msg, OrdersMessage):
            for u in msg.updates:
                # price/qty/leaves_qty too: an amend within the same ms changes only them
                key = (
                    "order",
                    u.order_id,
                    u.status,
                    u.cum_exec_qty,
                    u.updated_ms,
                    u.price,
                    u.qty,
                    u.leaves_qty,
                )
                if self._first(key):
                    out.append(u)
        elif isinstance(msg, FillsMessage):
            for f in msg.fills:
                if self._first(("exec", f.exec_id)):
                    out.append(f)
        elif isinstance(msg, PositionsMessage):
            out.extend(msg.positions)
        elif isinstance(msg, WalletMessage):
            out.extend(msg.wallets)


@asynccontextmanager
async def open_public_stream(
    url: str,
    symbol: str,
    tick_size: Decimal | str,
    *,
    depth: int = 50,
    options: WsOptions = _DEFAULT_WS,
) -> AsyncIterator[PublicStream]:
    """A connected ``PublicStream`` following ``symbol``."""
    async with open_ws(url, attrs.evolve(options, name=options.name or "public")) as conn:
        stream = PublicStream(conn, depth=depth)
        await stream.follow(symbol, tick_size)
        yield stream


@asynccontextmanager
async def open_private_stream(
    url: str, credentials: Credentials, *, options: WsOptions = _DEFAULT_WS
) -> AsyncIterator[PrivateStream]:
    """A connected, authenticated ``PrivateStream`` on ``PRIVATE_TOPICS``."""
    private = attrs.evolve(
        options,
        credentials=credentials,
        name=options.name or "private",
        topics=PRIVATE_TOPICS,
    )
    async with open_ws(url, private) as conn:
        yield PrivateStream(conn)
