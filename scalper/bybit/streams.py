"""Typed streams on top of ``WsConnection``: one symbol's L2 book, and our private pushes.

``PublicStream`` keeps the local book of the symbol it follows with
``scalper.core.book.OrderBook`` and yields compact events::

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

from scalper.core.book import BookStatus, OrderBook
from scalper.core.model import BookUpdate, Fill, OrderUpdate, PositionSnapshot, TradeTicks

from .auth import Credentials
from .decode import BookFrame, decode_public
from .parse import (
    BookMessage,
    FillsMessage,
    OrdersMessage,
    ParseStats,
    PositionsMessage,
    TradesMessage,
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
_OK = BookStatus.OK

PublicEvent = BookUpdate | TradeTicks | Connected | Disconnected
PrivateEvent = OrderUpdate | Fill | PositionSnapshot | WalletBalance | Connected | Disconnected


def invalidate_on_lost_frame(book: OrderBook, raw: str | bytes, topic: str) -> bool:
    """After ``raw`` failed to parse: if it was a frame of ``topic`` (our book's), the
    book missed a change it can never detect later, so mark it invalid. True when it
    did (the caller then re-requests a snapshot); the bot, the recorder and the replay
    all use this one rule so a replay resyncs exactly where the live stream did."""
    if not book.valid:
        return False
    ours = topic.encode() in raw if isinstance(raw, bytes) else topic in raw
    if ours:
        book.invalidate("a frame of the book topic could not be parsed")
    return ours


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


#: orderbook.50 pushes every 20 ms on linear: deep enough for sizing, cheap to apply
BOOK_DEPTH = 50


def public_topics(symbol: str, depth: int = BOOK_DEPTH) -> list[str]:
    """The public topics the bot follows for ``symbol``: the book first, then trades."""
    return [f"orderbook.{depth}.{symbol}", f"publicTrade.{symbol}"]


class PublicStream:
    """The L2 book and trades of one symbol. Iterate it for ``PublicEvent``s."""

    def __init__(
        self, conn: WsConnection, *, depth: int = BOOK_DEPTH, stats: ParseStats | None = None
    ):
        self.conn = conn
        self.depth = depth
        self.stats = stats or ParseStats(name="public")
        self.symbol: str | None = None
        self.book: OrderBook | None = None
        #: times the book was re-requested because it turned invalid
        self.resyncs = 0
        #: ``seq`` (Bybit's cross sequence) of the last book message applied
        self.last_seq = 0
        #: trio time the last frame arrived, before parsing: tick-to-decision starts here
        self.received_at = 0.0
        #: the book turned invalid and is not re-requested yet
        self.resync_due = False
        self._resync_wanted = trio.Event()

    def topics(self, symbol: str) -> list[str]:
        """The topics followed for ``symbol``."""
        return public_topics(symbol, self.depth)

    async def follow(self, symbol: str, tick_size: Decimal | str) -> None:
        """Switch to ``symbol`` (no-op if already following it)."""
        if symbol == self.symbol:
            return
        old = self.symbol
        if old is not None:
            await self.conn.unsubscribe(self.topics(old))
        self.symbol = symbol
        self.book = OrderBook(symbol, tick_size)
        await self.conn.subscribe(self.topics(symbol))
        logger.bind(symbol=symbol).info("public stream: following {} (was {})", symbol, old)

    def __aiter__(self) -> PublicStream:
        return self

    async def __anext__(self) -> PublicEvent:
        while True:
            item = await self.conn.__anext__()
            self.received_at = trio.current_time()
            if isinstance(item, str | bytes):
                event = await self._frame(item)
                if event is not None:
                    return event
            elif isinstance(item, Disconnected):
                self.dropped(item.reason)
                return item
            else:
                return item

    # ------------------------------------------------------------ the hot path

    def handle(self, raw: str | bytes) -> BookUpdate | TradeTicks | None:
        """Decode one frame and apply it to the book; the event for the strategy, or None.

        Synchronous, so it can run in the socket reader's task (``WsConnection.deliver_to``)
        with no channel hop in between. A book that turned invalid sets ``resync_due``:
        the caller (``__anext__``, or ``run_resyncs``) re-requests the snapshot.
        """
        msg = decode_public(raw, self.stats)
        if type(msg) is BookFrame or isinstance(msg, BookMessage):
            book = self.book
            if book is None or msg.symbol != self.symbol:
                return None  # a late frame of the symbol we left
            status = book.apply(msg.kind, msg.bids, msg.asks, msg.update_id, msg.ts_ms)
            if status is _OK:
                self.last_seq = msg.seq
                top = book.top()
                return BookUpdate(top=top) if top is not None else None
            if status is BookStatus.INVALID:
                return None  # dropped while waiting for the repairing snapshot
            self.last_seq = msg.seq
            self._want_resync()
            top = book.top()
            return BookUpdate(top=top) if top is not None else None
        if type(msg) is TradesMessage:
            if msg.symbol != self.symbol or not msg.trades:
                return None
            return TradeTicks(symbol=msg.symbol, trades=msg.trades)
        if msg is None:
            return self._lost(raw)
        return None

    def dropped(self, reason: str) -> None:
        """The connection was lost: the book misses whatever happened meanwhile."""
        book = self.book
        if book is not None:
            book.invalidate(f"stream dropped: {reason}")

    async def _frame(self, raw: str | bytes) -> BookUpdate | TradeTicks | None:
        event = self.handle(raw)
        if self.resync_due:
            await self._resync()
        return event

    def _lost(self, raw: str | bytes) -> BookUpdate | None:
        """A frame that could not be parsed (already counted). If it was one of our book's
        deltas, the book now silently misses a change: Bybit documents no gap-free ``u``
        to catch that later, so treat the book as invalid and ask for a fresh snapshot."""
        book = self.book
        if book is None or not invalidate_on_lost_frame(book, raw, self.topics(book.symbol)[0]):
            return None
        self._want_resync()
        top = book.top()
        return BookUpdate(top=top) if top is not None else None

    def _want_resync(self) -> None:
        self.resync_due = True
        self._resync_wanted.set()

    async def run_resyncs(self, on_resync: Callable[[], Awaitable[None]] | None = None) -> None:
        """Re-request the book whenever ``handle`` found it invalid (for the reader-task
        mode, where ``handle`` cannot await). Runs until cancelled.

        ``on_resync`` is awaited after each re-request: frames were lost, and what was
        built from them (the engine's trade window) is suspect too.
        """
        while True:
            await self._resync_wanted.wait()
            self._resync_wanted = trio.Event()
            if self.resync_due:
                before = self.resyncs
                await self._resync()
                if on_resync is not None and self.resyncs != before:
                    await on_resync()

    async def _resync(self) -> None:
        self.resync_due = False
        book = self.book
        if book is None:
            return
        self.resyncs += 1
        logger.bind(symbol=book.symbol).warning(
            "book invalid ({}): resubscribing for a fresh snapshot", book.invalid_reason
        )
        await self.conn.resubscribe([self.topics(book.symbol)[0]])


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
