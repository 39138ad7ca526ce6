"""The market-data -> strategy hop: a coalescing mailbox, never blocking the socket reader.

This is the one hop between the socket and the engine: every extra hop (a task
switch, a channel) adds its cost to each frame's tick-to-decision time, so the
market-data side decodes a frame and applies it to the book in the socket reader's own
task, then puts the result here with a plain, synchronous call; the strategy task takes
it out. What it holds is not a queue but the *state the strategy has not seen yet*:

* **the latest book**: a new book update replaces one the strategy has not taken yet.
  A queue of stale books would only delay the decision on the fresh one. A book
  replaced while the strategy is merely busy (a burst of frames from one socket read)
  is *coalesced*: counted in ``coalesced``, not a warning. Once the strategy has taken
  nothing for ``lag_after`` updates (64: the size of the channel this mailbox
  replaced) it is *lagging*: each replaced book then counts in
  ``Metrics.market_dropped`` and is logged at most once per ``log_interval_s`` with the
  number since the last line, so a lagging strategy is never silent, yet a long lag
  cannot flood the log with one line per dropped update.
* **every trade**: a dropped trade would be gone from the VWAP window for good, so
  trades accumulate (oldest first) and are handed over together, before the book.
  The backlog is bounded at ``max_pending_trades`` (the strategy's window is 100):
  beyond it the oldest trades are discarded and each one is counted as dropped too.
  Trades still pending for a symbol we switched away from are discarded (not counted:
  the engine would ignore them anyway).

Why not a trio memory channel: a full channel can only refuse the *newest* item, and
a non-full one delivers every stale book in turn; here the newest always wins, and a
lagging strategy costs nothing but the superseded objects. When the strategy keeps up,
every update is delivered, in order.

The timestamp handed over with a message is when its frame was received: for a book,
the latest frame's; for a batch of trades, the oldest one's (its true age).

**Taken at once.** The strategy may register a handler (``deliver_to``): an update
offered while its task waits here with nothing pending goes to the handler in the
sender's task (the socket reader), which may refuse it (then it is kept as above).
Why: at a steady market rate each frame is its own wake-up, and handing it to another
task costs a second scheduler pass (a wake-up, an epoll call, the task switch) that
measured as more CPU than the decision itself. Only an idle strategy is skipped over,
so nothing is reordered: whenever a message is pending, every later one queues behind it.
A frame with more of its socket read behind it (``more``) is always kept: a burst
coalesces into the latest book as before, instead of one decision per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import attrs
import trio
import trio.lowlevel
from loguru import logger

from ..core.model import BookTop, BookUpdate, Trade, TradeTicks
from .metrics import Metrics

__all__ = ["MarketFeed", "MarketHandler", "MarketMessage", "MarketReceiver"]

MarketMessage = BookUpdate | TradeTicks
#: takes a message in the sender's task: ``(received_at, message) -> taken``
MarketHandler = Callable[[float, MarketMessage], bool]

#: the strategy's window is 100 trades: keeping more than a few windows is pointless
_MAX_PENDING_TRADES = 1000
#: updates offered with nothing taken before the strategy counts as lagging
_LAG_AFTER = 64


@attrs.define(eq=False)
class MarketFeed:
    """The mailbox between the market-data path and the strategy, with drop accounting."""

    _metrics: Metrics = attrs.field(alias="metrics")
    _clock: Callable[[], float] = attrs.field(
        default=trio.current_time, kw_only=True, alias="clock"
    )
    _log_interval_s: float = attrs.field(default=5.0, kw_only=True, alias="log_interval_s")
    _max_trades: int = attrs.field(
        default=_MAX_PENDING_TRADES, kw_only=True, alias="max_pending_trades"
    )
    _lag_after: int = attrs.field(default=_LAG_AFTER, kw_only=True, alias="lag_after")
    #: updates offered since the strategy last took one
    _since_take: int = attrs.field(default=0, init=False)
    #: book updates replaced by a newer one while the strategy was busy (not lagging)
    coalesced: int = attrs.field(default=0, init=False)
    _dropped_since_log: int = attrs.field(default=0, init=False)
    _last_log: float = attrs.field(default=-float("inf"), init=False)
    _book: BookUpdate | None = attrs.field(default=None, init=False)
    _book_at: float = attrs.field(default=0.0, init=False)
    _pending: list[Trade] = attrs.field(factory=list, init=False)
    _pending_symbol: str = attrs.field(default="", init=False)
    _trades_at: float = attrs.field(default=0.0, init=False)
    #: the receivers parked in ``receive``, oldest first. Our own lot, not a
    #: ``ParkingLot``: every offer asks whether one is parked, and a dict's truth is no
    #: call; a cancelled receiver leaves it in its abort, at the moment trio delivers
    #: the cancel, so the answer is never stale
    _parked: dict[trio.lowlevel.Task, None] = attrs.field(factory=dict, init=False)
    _closed: bool = attrs.field(default=False, init=False)
    _handler: MarketHandler | None = attrs.field(default=None, init=False)
    #: the strategy's end of the hop
    receiver: MarketReceiver = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.receiver = MarketReceiver(self)

    @property
    def pending_trades(self) -> int:
        """Trades waiting for the strategy (for tests and the status panel)."""
        return len(self._pending)

    @property
    def pending_book(self) -> bool:
        """True while a book update waits for the strategy."""
        return self._book is not None

    def deliver_to(self, handler: MarketHandler | None) -> None:
        """Offer updates that find the receiver idle to ``handler`` first (None: never).

        ``handler(received_at, message)`` runs in the sender's task and returns True
        when it took the message. It is asked only while the receiver's task is parked
        here with nothing pending, so a message it takes is the next one in order.
        """
        self._handler = handler

    # ------------------------------------------------------------ sending side

    def book(self, top: BookTop, received_at: float) -> bool:
        """Offer a book top; False when it was counted as dropped (strategy lagging)."""
        return self.book_update(BookUpdate(top=top), received_at)

    def book_update(self, update: BookUpdate, received_at: float, more: bool = False) -> bool:
        """Offer a book update (as ``book``, without wrapping the top again). ``more``:
        other updates follow at once (one socket read's burst): kept, never handed over,
        so the burst coalesces as it would for a busy strategy."""
        return self.offer(update, received_at, more)

    def trade_ticks(self, ticks: TradeTicks, received_at: float, more: bool = False) -> bool:
        """Offer a trade message (as ``trades``, without unpacking it when it is taken
        at once; ``more`` as for ``book_update``)."""
        return self.offer(ticks, received_at, more)

    def offer(self, message: MarketMessage, received_at: float, more: bool = False) -> bool:
        """Offer a book update or a trade message (``book_update`` or ``trade_ticks``:
        the market-data path's one call per frame, whichever it decoded).

        The handler (``deliver_to``) is asked first, only while a receiver is parked and
        nothing is pending whose order the message could jump (one receiver parks only
        once it has taken everything; a second one may still be parked beside a woken
        one) and no more of a burst follows; when it takes the message, that is all.
        """
        if not more and self._parked and self._book is None and not self._pending:
            handler = self._handler
            if (
                handler is not None
                and (not isinstance(message, TradeTicks) or len(message.trades) <= self._max_trades)
                and handler(received_at, message)
            ):
                self._since_take = 0
                return True
        if isinstance(message, TradeTicks):
            return self._keep_trades(message.symbol, message.trades, received_at)
        return self._keep_book(message, received_at)

    def _keep_book(self, update: BookUpdate, received_at: float) -> bool:
        superseded = self._book is not None
        self._book = update
        self._book_at = received_at
        self._since_take += 1
        if self._parked:  # the receiver parked for it takes it
            self._wake_one()
        if superseded:
            if self._since_take <= self._lag_after:
                self.coalesced += 1
                return True
            return self._dropped(1)
        return True

    def trades(self, symbol: str, trades: tuple[Trade, ...], received_at: float) -> bool:
        """Offer trades; they are kept until taken. False when the backlog overflowed."""
        return self.offer(TradeTicks(symbol=symbol, trades=trades), received_at)

    def _keep_trades(self, symbol: str, trades: tuple[Trade, ...], received_at: float) -> bool:
        pending = self._pending
        if self._pending_symbol != symbol:
            pending.clear()
            self._pending_symbol = symbol
        if not pending:
            self._trades_at = received_at
        pending.extend(trades)
        self._since_take += 1
        if self._parked:  # the receiver parked for it takes it
            self._wake_one()
        excess = len(pending) - self._max_trades
        if excess > 0:
            del pending[:excess]
            return self._dropped(excess)
        return True

    def close(self) -> None:
        """No more updates: the receiver ends once it has taken what is left."""
        self._closed = True
        while self._parked:
            self._wake_one()

    # ------------------------------------------------------------ receiving side

    def take_nowait(self) -> tuple[float, MarketMessage] | None:
        """The next message for the strategy (trades before the book), or None."""
        self._since_take = 0
        pending = self._pending
        if pending:
            message: MarketMessage = TradeTicks(symbol=self._pending_symbol, trades=tuple(pending))
            pending.clear()
            return self._trades_at, message
        update = self._book
        if update is not None:
            self._book = None
            return self._book_at, update
        return None

    async def receive(self) -> tuple[float, MarketMessage]:
        """Wait for the next message. Raises ``trio.EndOfChannel`` after ``close``."""
        # Checkpoint first, take after: a message is never lost to a cancellation, and
        # a strategy that yields here lets more updates coalesce before it takes one.
        # With nothing pending, parking is the checkpoint: one first would cost one
        # more scheduler pass per message at a steady rate.
        if self._book is not None or self._pending:
            await trio.lowlevel.checkpoint()
        while True:
            item = self.take_nowait()
            if item is not None:
                return item
            if self._closed:
                raise trio.EndOfChannel
            await self._park()

    async def _park(self) -> None:
        """Sleep until an offer or ``close`` wakes this task (``_wake_one``)."""
        task = trio.lowlevel.current_task()
        parked = self._parked
        parked[task] = None

        def abort(_: object) -> trio.lowlevel.Abort:
            del parked[task]  # cancelled while parked: parked no more, from now on
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _wake_one(self) -> None:
        """Wake the receiver parked longest (the caller checked that one is)."""
        parked = self._parked
        task = next(iter(parked))
        del parked[task]
        trio.lowlevel.reschedule(task)

    def _dropped(self, count: int) -> bool:
        self._metrics.market_dropped += count
        self._dropped_since_log += count
        now = self._clock()
        if now - self._last_log >= self._log_interval_s:
            logger.warning(
                # the wording of the channel this mailbox replaced: log readers rely on it
                "market-data channel full: dropped {} updates "
                "(superseded by newer ones; strategy lagging; {} total)",
                self._dropped_since_log,
                self._metrics.market_dropped,
            )
            self._dropped_since_log = 0
            self._last_log = now
        return False


class MarketReceiver:
    """The strategy's end of a ``MarketFeed``: ``async with`` / ``async for`` like a
    trio receive channel, yielding ``(received_at, message)``."""

    def __init__(self, feed: MarketFeed) -> None:
        self._feed = feed

    def __aiter__(self) -> MarketReceiver:
        return self

    async def __anext__(self) -> tuple[float, MarketMessage]:
        try:
            return await self._feed.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def receive(self) -> tuple[float, MarketMessage]:
        """The next message (see ``MarketFeed.receive``)."""
        return await self._feed.receive()

    def deliver_to(self, handler: MarketHandler | None) -> None:
        """See ``MarketFeed.deliver_to``: the receiver's owner takes idle-time updates."""
        self._feed.deliver_to(handler)

    def receive_nowait(self) -> tuple[float, MarketMessage]:
        """The next message now; raises ``trio.WouldBlock`` when there is none."""
        item = self._feed.take_nowait()
        if item is None:
            raise trio.WouldBlock
        return item

    async def aclose(self) -> None:
        """Stop receiving: later updates are discarded by nobody and cost nothing."""
        self._feed.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MarketReceiver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._feed.close()
