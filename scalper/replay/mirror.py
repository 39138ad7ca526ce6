"""The recorded market as the simulator's matcher reads it: depth, touch, mark and last.

The matcher works on a ``sim.market.SymbolMarket`` (its ``SimBook`` in lots and ticks,
its mark and last price). In a backtest those must come from the recording, so this
class keeps them in step with the replayed ``core.book.OrderBook`` and tape:

* Before an order reaches the matcher the whole recorded depth is loaded
  (``load_depth``), so a market order walks the recorded levels (partial fills when
  they run out; Bybit's protection price stops the walk 3 % through the touch). While
  orders rest only the touch is loaded (``sync_touch``): all the crossing rule reads.
* The recorded mid stands in for the mark price (the archives carry none), the last
  recorded trade for the last price; both also on the tick grid, which is what the
  exchange-side stops compare with.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from scalper.core.book import OrderBook
from scalper.core.model import BookTop, Instrument, Side, Trade
from scalper.sim.market import SymbolMarket

from .recorded import RecordedBook

__all__ = ["BookMirror"]


class BookMirror:
    """Loads the replayed book into the matcher's symbol; tracks mark and last price."""

    def __init__(self, book: OrderBook, sm: SymbolMarket, instrument: Instrument) -> None:
        self._book = book
        self._sm = sm
        self._tick_size = instrument.tick_size
        self.tick = float(instrument.tick_size)
        self.step = float(instrument.qty_step)
        self.lots = RecordedBook()
        sm.book = self.lots  # the synthetic book is never used
        self.last_price: float | None = None
        #: the recorded last trade and mid, on the tick grid (what stops compare with)
        self.last_tick: int | None = None
        self.mark_tick: int | None = None
        self._tick_cache: dict[Decimal, int] = {}

    def ticks(self, price: Decimal) -> int:
        """``price`` on the tick grid (cached: the same order prices recur)."""
        ticks = self._tick_cache.get(price)
        if ticks is None:
            ticks = self._tick_cache[price] = int(price / self._tick_size)
        return ticks

    def levels(self, side: Side, depth: int | None) -> list[tuple[int, int]]:
        """The recorded levels of ``side`` as ``(tick, lots)``, best first."""
        tick, step = self.tick, self.step
        return [
            (round(p / tick), max(1, round(s / step))) for p, s in self._book.levels(side, depth)
        ]

    def load_depth(self) -> None:
        """Mirror the recorded depth (both sides) so an order walks the recorded levels."""
        lots, sm = self.lots, self._sm
        lots.load(self.levels(Side.BUY, None), self.levels(Side.SELL, None))
        if lots.has_bids and lots.has_asks:
            sm.mark_px = (lots.bid_top + lots.ask_top) / 2
            self.mark_tick = max(1, round(sm.mark_px))
        if self.last_price is not None:
            sm.last_tick = round(self.last_price / self.tick)
        elif self.mark_tick is not None:
            sm.last_tick = self.mark_tick

    def sync_touch(self) -> None:
        """Mirror only the touch: all the matcher's crossing rule reads while orders rest."""
        self.lots.load(self.levels(Side.BUY, 1), self.levels(Side.SELL, 1))

    def mark_from(self, top: BookTop) -> None:
        """A recorded book update: its mid is the mark."""
        mark = (top.bid + top.ask) / (2 * self.tick)
        self._sm.mark_px = mark
        self.mark_tick = max(1, round(mark))  # as SymbolMarket.mark_tick reads it

    def last_from(self, trades: Sequence[Trade]) -> None:
        """Recorded trades (not empty): the newest is the last price."""
        self.last_price = trades[-1].price
        self.last_tick = round(self.last_price / self.tick)

    def arm_last(self) -> None:
        """Before the matcher checks stops: its last price is the recorded one."""
        if self.last_tick is not None:
            self._sm.last_tick = self.last_tick
