"""The market-data protocol of one followed symbol: public frames in, engine events out.

Every consumer of Bybit's public stream (the live ``PublicStream``, ``scalper record``,
``scalper replay`` and ``scalper backtest``) must resync at exactly the same frames, or
a replay would not go through the book invalidations the bot went through. So the rule
lives here once, in a plain object with no I/O: it never awaits, never reads a clock
and never logs. The caller feeds it frames and connection news and carries out what it
asks for::

    market = MarketData(ParseStats(name="public"))
    subscribe = market.follow("BTCUSDT", tick_size)   # topics to subscribe
    event = market.frame(raw)                         # BookUpdate | TradeTicks | None
    action = market.take_resubscribe()                # Resubscribe | None

It owns the symbol's ``core.book.OrderBook`` and is the only code that applies frames
to a book. Its rules:

* A book frame of the followed symbol is applied. A frame that turns the book invalid
  (delta before snapshot, ``u`` going backwards, crossed, malformed level) asks for a
  resubscribe (Bybit answers it with a fresh snapshot); until then deltas are dropped.
* A frame that cannot be parsed is counted in ``stats`` by kind. If it named our book
  topic, the book silently missed a change that no later ``u`` would reveal (Bybit
  documents no gap-free sequence), so the book is invalidated and re-requested too.
* A frame of another symbol (one we left, still in flight) is counted and ignored.
* ``follow`` switches symbol: an empty book, the new topics.

The hot method ``frame`` allocates nothing beyond the decoded message and the event it
returns (and, for a trade price not seen before, an entry in a bounded memo): a
resubscribe is a flag (``resync_due``) until the caller takes the action.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Final

import attrs

from scalper.core.book import BookStatus, Level, OrderBook
from scalper.core.hotpath import book_event
from scalper.core.model import BookUpdate, TradeTicks

from .decode import BookFrame, decode_public
from .parse import BookMessage, ParseStats, TradesMessage

__all__ = [
    "BOOK_DEPTH",
    "MarketData",
    "MarketEvent",
    "Resubscribe",
    "invalidate_on_lost_frame",
    "public_topics",
]

#: orderbook.50 pushes every 20 ms on linear: deep enough for sizing, cheap to apply
BOOK_DEPTH: Final = 50
_OK = BookStatus.OK
_INVALID = BookStatus.INVALID

MarketEvent = BookUpdate | TradeTicks


def public_topics(symbol: str, depth: int | str = BOOK_DEPTH) -> list[str]:
    """The public topics the bot follows for ``symbol``: the book first, then trades."""
    return [f"orderbook.{depth}.{symbol}", f"publicTrade.{symbol}"]


def invalidate_on_lost_frame(book: OrderBook, raw: str | bytes, topic: str) -> bool:
    """After ``raw`` failed to parse: if it was a frame of ``topic`` (our book's), the
    book missed a change it can never detect later, so mark it invalid. True when it
    did (the caller then re-requests a snapshot)."""
    if not book.valid:
        return False
    ours = topic.encode() in raw if isinstance(raw, bytes) else topic in raw
    if ours:
        book.invalidate("a frame of the book topic could not be parsed")
    return ours


@attrs.frozen
class Resubscribe:
    """Ask the exchange for the book again: unsubscribe and subscribe ``topics``."""

    topics: tuple[str, ...]
    #: why the book turned invalid
    reason: str


class MarketData:
    """The book and trades of the followed symbol, from raw public frames. Sans-IO.

    ``depth`` is the book topic's depth as it appears in the topic (a recording of
    Bybit's 500-level archive follows ``orderbook.500.*``).
    """

    __slots__ = (
        "_floats",
        "book",
        "book_messages",
        "book_topic",
        "depth",
        "invalidations",
        "last_seq",
        "other_symbol_frames",
        "resync_due",
        "stats",
        "symbol",
        "trade_messages",
    )

    def __init__(self, stats: ParseStats, *, depth: int | str = BOOK_DEPTH) -> None:
        self.stats = stats
        self.depth = depth
        self.symbol: str | None = None
        self.book: OrderBook | None = None
        self.book_topic = ""
        #: ``seq`` (Bybit's cross sequence) of the last book message applied
        self.last_seq = 0
        #: the book turned invalid and the resubscribe was not taken yet
        self.resync_due = False
        #: book frames of the followed symbol (applied, or dropped while invalid)
        self.book_messages = 0
        #: trade frames of the followed symbol with at least one trade
        self.trade_messages = 0
        #: book or trade frames of another symbol (late frames of one we left)
        self.other_symbol_frames = 0
        #: times a frame turned the book invalid (a bad frame, or a lost one of the book)
        self.invalidations = 0
        #: the decoder's memo of trade price strings (``decode_public``)
        self._floats: dict[str, float] = {}

    def topics(self, symbol: str) -> list[str]:
        """The topics followed for ``symbol``."""
        return public_topics(symbol, self.depth)

    def follow(self, symbol: str, tick_size: Decimal | str) -> list[str]:
        """Switch to ``symbol`` with an empty book; the topics to subscribe ([] if it is
        the symbol followed already). The old symbol's topics are ``topics(old)``."""
        if symbol == self.symbol:
            return []
        self.symbol = symbol
        self.book = OrderBook(symbol, tick_size)
        topics = self.topics(symbol)
        self.book_topic = topics[0]
        return topics

    # ------------------------------------------------------------ the hot path

    def frame(self, raw: str | bytes) -> MarketEvent | None:
        """Decode one frame and apply it; the event for the engine, or None.

        A frame that turned the book invalid sets ``resync_due`` (take the action with
        ``take_resubscribe``) and still returns the now invalid top, so the engine
        stops entries on it.
        """
        msg = decode_public(raw, self.stats, self._floats)
        if type(msg) is BookFrame or isinstance(msg, BookMessage):
            book = self.book
            if book is None or msg.symbol != self.symbol:
                self.other_symbol_frames += 1
                return None
            self.book_messages += 1
            status = book.apply(msg.kind, msg.bids, msg.asks, msg.update_id, msg.ts_ms)
            if status is _INVALID:
                return None  # dropped while waiting for the repairing snapshot
            self.last_seq = msg.seq
            if status is not _OK:
                self.resync_due = True
                self.invalidations += 1
            return book.top_as(book_event)  # None while a side is empty
        if type(msg) is TradesMessage:
            if msg.symbol != self.symbol:
                self.other_symbol_frames += 1
                return None
            if not msg.trades:
                return None
            self.trade_messages += 1
            return msg  # a TradesMessage is the engine's TradeTicks
        if msg is None:
            return self._lost(raw)
        return None  # a message type this stream does not use

    def book_message(
        self, kind: str, bids: Collection[Level], asks: Collection[Level], u: int, ts_ms: int
    ) -> BookStatus:
        """Apply a book message of the followed symbol decoded elsewhere (an archive line
        read by its importer), with ``frame``'s rule; the book's status."""
        book = self.book
        if book is None:
            raise RuntimeError("apply before follow: no book to apply to")
        self.book_messages += 1
        status = book.apply(kind, bids, asks, u, ts_ms)
        if status is BookStatus.INVALIDATED:
            self.resync_due = True
            self.invalidations += 1
        return status

    def _lost(self, raw: str | bytes) -> BookUpdate | None:
        """A frame that could not be parsed (already counted by kind in ``stats``)."""
        book = self.book
        if book is None or not invalidate_on_lost_frame(book, raw, self.book_topic):
            return None
        self.resync_due = True
        self.invalidations += 1
        top = book.top()
        return BookUpdate(top=top) if top is not None else None

    # ------------------------------------------------------------ actions and gaps

    def take_resubscribe(self) -> Resubscribe | None:
        """The resubscribe the book needs, once (None when it needs none)."""
        if not self.resync_due:
            return None
        self.resync_due = False
        book = self.book
        if book is None:
            return None
        return Resubscribe(topics=(self.book_topic,), reason=book.invalid_reason or "invalid")

    def invalidate(self, reason: str, *, replace: bool = True) -> BookUpdate | None:
        """The market data has a gap (a dropped connection, a hole in an archive): the
        book misses whatever happened meanwhile. Returns the invalid top for the engine,
        which stops entries on it. ``replace=False`` keeps the first reason of a book
        that is invalid already. The next snapshot repairs the book."""
        book = self.book
        if book is None:
            return None
        if replace or book.valid:
            book.invalidate(reason)
        top = book.top()
        return BookUpdate(top=top) if top is not None else None
