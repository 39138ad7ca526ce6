"""Replay a recording through the bot's own code: parse -> book -> engine, sans-IO.

Each recorded frame goes through the market-data protocol the live stream uses
(``scalper.bybit.marketdata.MarketData``: decoding, the book, the resync rule; a book that
turns invalid counts as a resync) and the result reaches
``scalper.core.strategy.Engine.handle`` with ``now_ms`` = the frame's recorded receive
time plus the exchange clock offset measured at record time (the live engine's clock is
``BybitRest.now_ms``, local + offset), so staleness, cooldown and max-hold rules see the
clock they saw live. Output lines are stamped with the offset from the recording start. Between
frames a ``Tick`` is fed every ``tick_interval_ms`` of recorded time, as the strategy
task's timer does.

The engine's commands are carried out by a ``Venue`` (orders, cancels, position reads),
whose answers are fed back as events at the same ``now_ms``; the loop runs until no
event is left, so an entry, its fill and the stops armed after it all play out. The
venue is ``scalper.replay.venue.MatchingVenue``: the simulator's matching engine
driven by the recorded book and trades (depth, queue position, fees, latency, the
exchange-side stop), the same for ``scalper replay`` and ``scalper backtest``; a test may
pass another through ``venue``.

Connection markers are replayed too: ``disconnected`` invalidates the book (the engine
is told, entries stop), ``reconnected`` invalidates it as well and feeds ``Resync``
(no entries until position and orders are read again, which the venue answers at
once); the next recorded snapshot repairs the book, as it did live. ``gap`` (written by
``scalper import-bybit`` where an archive lost lines: a ``u`` gap or an unreadable line)
invalidates the book and counts a resync: the archive cannot be re-asked for a snapshot,
so the book waits for the next one in the file, as the live stream waits for its
resubscription's.

Nothing here reads a clock or draws a random number: the same file gives the same
output, line for line. ``replay(..., speed=X)`` only adds sleeps between records.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final

from scalper.bybit.marketdata import BOOK_DEPTH, MarketData
from scalper.bybit.parse import ParseStats
from scalper.core.book import OrderBook
from scalper.core.model import (
    BookUpdate,
    OrderFailed,
    Resync,
    SymbolSelected,
    Tick,
    TradeTicks,
)
from scalper.core.strategy import Engine, EngineConfig

from .loop import EngineLoop, ReplayError
from .recording import EventRecord, FrameRecord, Record, RecordingHeader, RecordingReader
from .summary import ReplaySummary, assumed_instrument
from .venue import MatchingVenue, VenueSettings
from .venue_protocol import Venue, VenueFactory

__all__ = [
    "ReplayError",
    "ReplaySummary",
    "Replayer",
    "Venue",
    "VenueFactory",
    "assumed_instrument",
    "play",
    "replay",
]

#: ticks older than this before the next record are skipped (one tick does their work)
_MAX_TICK_GAP_MS: Final = 60_000
UNKNOWN_EVENT: Final = "unknown_event"

Emit = Callable[[str], None]


def _recorded_depth(header: RecordingHeader) -> int | str:
    """The depth of the recorded book topic (older files without topics: the bot's)."""
    topic = next((t for t in header.topics if t.startswith("orderbook.")), None)
    if topic is None:
        return BOOK_DEPTH
    depth, _, symbol = topic.removeprefix("orderbook.").partition(".")
    return depth if symbol == header.symbol else BOOK_DEPTH


class Replayer:
    """Feeds records through parse -> book -> engine, filled by the venue. Sans-IO.

    ``emit`` receives each output line (transitions, alerts, fills, resyncs;
    with ``verbose`` also the engine's log lines).
    """

    def __init__(
        self,
        header: RecordingHeader,
        config: EngineConfig,
        *,
        confirm_timeout_ms: int = 10_000,
        tick_interval_ms: int = 250,
        emit: Emit | None = None,
        verbose: bool = False,
        venue: VenueFactory | None = None,
    ) -> None:
        if tick_interval_ms <= 0:
            raise ValueError("tick_interval_ms must be > 0")
        self.header = header
        self.symbol = header.symbol
        self.instrument = header.instrument or assumed_instrument(header)
        self.engine = Engine(config)
        self._offset = header.clock_offset_ms
        #: engine time of the recording's start (output lines are stamped relative to it)
        self._origin = header.start_ms + self._offset
        self._now = self._origin
        self.stats = ParseStats(name="replay", monotonic=lambda: self._now / 1000.0)
        #: the live stream's protocol, following the recorded book topic
        self.market = MarketData(self.stats, depth=_recorded_depth(header))
        self.market.follow(header.symbol, header.tick_size)
        self.venue: Venue
        if venue is None:
            settings = VenueSettings(confirm_timeout_ms=confirm_timeout_ms)
            self.venue = MatchingVenue(self.book, self.instrument, settings)
        else:
            self.venue = venue(self.book, self.instrument)
        self._emit = emit or (lambda _line: None)
        self.loop = EngineLoop(self.engine, self.venue, self.book, self.symbol, self._line, verbose)
        self._tick_ms = tick_interval_ms
        self._next_tick: int | None = None
        self._started = False
        self._first_t: int | None = None
        self.records = 0
        self.frames = 0
        #: public trades in the trade messages
        self.public_trades = 0
        self.resyncs = 0
        self.disconnects = 0
        self.reconnects = 0
        #: markers this replayer does not know, counted like unreadable lines
        self.unknown_events: Counter[str] = Counter()

    @property
    def book(self) -> OrderBook:
        """The replayed book (the protocol's)."""
        book = self.market.book
        assert book is not None  # followed in __init__
        return book

    # ------------------------------------------------------------ input

    def feed(self, record: Record) -> None:
        """Replay one record at its recorded time."""
        self.records += 1
        t = record.t + self._offset  # the engine's clock: local receive time + offset
        if not self._started:
            self._start(t)
        self._advance(t)
        self._now = max(self._now, t)
        self._settle(t)
        if isinstance(record, FrameRecord):
            self.frames += 1
            self._frame(record.frame, t)
        else:
            self._marker(record, t)

    def _start(self, t: int) -> None:
        self._started = True
        self._first_t = t
        self._now = t
        self._next_tick = t + self._tick_ms
        self.loop.run(SymbolSelected(symbol=self.symbol, instrument=self.instrument), t)

    def _advance(self, t: int) -> None:
        """Feed the timer ticks due before ``t`` (and expire unfilled orders)."""
        nxt = self._next_tick
        assert nxt is not None
        if t - nxt > _MAX_TICK_GAP_MS:
            nxt += (t - _MAX_TICK_GAP_MS - nxt) // self._tick_ms * self._tick_ms
        while nxt <= t:
            self._now = max(self._now, nxt)
            self._settle(nxt)
            for event in self.venue.expire(nxt):
                if isinstance(event, OrderFailed):
                    self._line(nxt, f"order {event.order_link_id}: {event.reason}")
                self.loop.run(event, nxt)
            self.loop.run(Tick(), nxt)
            nxt += self._tick_ms
        self._next_tick = nxt

    def _settle(self, t: int) -> None:
        """Outcomes the venue has ready by ``t`` (orders and cancels that were in flight)."""
        events = self.venue.settle(t)
        if events:
            self.loop.fill_lines(t)
            for event in events:
                if isinstance(event, OrderFailed):
                    self._line(t, f"order {event.order_link_id}: {event.reason}")
                self.loop.run(event, t)

    def _frame(self, raw: str, t: int) -> None:
        market = self.market
        books, invalidations = market.book_messages, market.invalidations
        event = market.frame(raw)
        if market.invalidations != invalidations:
            # live, the stream resubscribed here; the recording holds what that brought
            market.take_resubscribe()
            self.resyncs += 1
            self._line(t, f"book invalid ({self.book.invalid_reason}): resync")
        if type(event) is BookUpdate:
            self.loop.run(event, t)
            if event.top.valid:
                filled = self.venue.on_book(event.top, t)
                self.loop.fill_lines(t)
                for fill in filled:
                    self.loop.run(fill, t)
        elif type(event) is TradeTicks:
            trades = event.trades
            self.public_trades += len(trades)
            self.loop.last_price = trades[-1].price
            self.loop.run(event, t)
            filled = self.venue.on_trades(trades, t)
            self.loop.fill_lines(t)
            for fill in filled:
                self.loop.run(fill, t)
        elif market.book_messages != books:
            # a delta dropped while the book waits for its snapshot: the engine is still
            # shown the (invalid) top, so no rule runs on a book it cannot trust
            top = self.book.top()
            if top is not None:
                self.loop.run(BookUpdate(top=top), t)
        # else: a lost frame of another topic (counted in self.stats), another symbol's
        # frame (counted by the protocol), or a message type this stream ignores

    def _marker(self, record: EventRecord, t: int) -> None:
        event = record.event
        if event == "disconnected":
            self.disconnects += 1
            self._line(t, f"stream dropped ({record.reason}): book invalid")
            self._invalidate(f"stream dropped: {record.reason}", t)
        elif event == "reconnected":
            self.reconnects += 1
            self._line(t, "stream reconnected: resync, book invalid until the next snapshot")
            self._invalidate("stream reconnected", t)
            self.loop.run(Resync(reason="public stream reconnected"), t)
        elif event == "gap":
            self.resyncs += 1
            self._line(t, f"archive gap ({record.reason}): book invalid until the next snapshot")
            self._invalidate(f"archive gap: {record.reason}", t)
        elif event == "reset":  # an archive snapshot that replaces the book whatever its u
            self._invalidate(f"archive reset: {record.reason}", t)
        elif event in ("connected", "resubscribed", "stopped"):
            pass  # informational: the replayed book finds its own resyncs
        else:
            self.unknown_events[UNKNOWN_EVENT] += 1

    def _invalidate(self, reason: str, t: int) -> None:
        update = self.market.invalidate(reason, replace=False)
        if update is not None:
            self.loop.run(update, t)  # tells the engine: no entries on this book

    def _line(self, t: int, text: str) -> None:
        self._emit(f"{(t - self._origin) / 1000:+10.3f}s  {text}")

    # ------------------------------------------------------------ output

    def summary(self, file_errors: Mapping[str, int] | None = None) -> ReplaySummary:
        """The counters so far; ``file_errors`` are the reader's unreadable lines."""
        errors = Counter(file_errors or {})
        errors.update(self.unknown_events)
        top = self.book.top()
        mark = top.mid if top is not None and top.valid else self.loop.last_price
        venue = self.venue
        position = venue.position()
        held = (
            "flat"
            if position.side is None
            else f"{position.side.value} {position.size} @ {position.avg_price}"
        )
        return ReplaySummary(
            symbol=self.symbol,
            records=self.records,
            frames=self.frames,
            file_errors=dict(errors),
            parse_errors=dict(self.stats.counts),
            book_messages=self.market.book_messages,
            trade_messages=self.market.trade_messages,
            other_symbol_frames=self.market.other_symbol_frames,
            resyncs=self.resyncs,
            disconnects=self.disconnects,
            reconnects=self.reconnects,
            entries_placed=self.loop.entries_placed,
            entries_filled=sum(1 for f in venue.fills if not f.reduce_only),
            exits_placed=self.loop.exits_placed,
            exits_filled=sum(1 for f in venue.fills if f.reduce_only),
            realised_pnl=venue.realised_pnl,
            fees=venue.fees,
            unrealised_pnl=venue.unrealised(mark),
            final_state=self.engine.state.value,
            position=held,
            book_valid=self.book.valid,
            book_invalid_reason=self.book.invalid_reason,
            duration_ms=self._now - (self._first_t if self._first_t is not None else self._now),
            instrument_assumed=self.header.instrument is None,
            clock_offset_ms=self._offset,
        )


def replay(
    reader: RecordingReader,
    config: EngineConfig,
    *,
    speed: float | None = None,
    confirm_timeout_ms: int = 10_000,
    emit: Emit | None = None,
    verbose: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Replay every record of ``reader`` and return the summary (see ``play``)."""
    player = Replayer(
        reader.header,
        config,
        confirm_timeout_ms=confirm_timeout_ms,
        emit=emit,
        verbose=verbose,
    )
    play(reader, player, speed=speed, sleep=sleep, monotonic=monotonic)
    return player.summary(reader.errors)


def play(
    reader: RecordingReader,
    player: Replayer,
    *,
    speed: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Feed every record of ``reader`` to ``player``; ``speed`` None = as fast as possible.

    With ``speed`` (1.0 = as recorded, 10.0 = ten times faster) each record waits until
    its recorded offset divided by ``speed`` has passed; the output is the same. A
    caller interrupted half-way (Ctrl+C) still has ``player.summary()`` so far.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    origin: tuple[int, float] | None = None
    for record in reader:
        if speed is not None:
            if origin is None:
                origin = (record.t, monotonic())
            due = origin[1] + (record.t - origin[0]) / 1000.0 / speed
            delay = due - monotonic()
            if delay > 0:
                sleep(delay)
        player.feed(record)
