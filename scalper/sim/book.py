"""The simulator's own L2 book: integer ticks and lots, contiguous levels, change tracking.

Every tick between a side's best price and its far end holds a level, so the best price
is a plain integer (no max() over a dict per update) and the top-N window of a depth
topic is a range. Each mutation records the tick in ``changed_bids``/``changed_asks``;
the publisher turns those sets plus the movement of the windows into Bybit deltas and
then clears them. A side is empty when ``bid_top < bid_low`` (``ask_top > ask_high``).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SimBook", "SizeFn"]

#: draws the size (lots) of a new level
SizeFn = Callable[[], int]


class SimBook:
    """Contiguous bid/ask ladders keyed by tick index, sizes in lots (> 0)."""

    __slots__ = (
        "ask_high",
        "ask_top",
        "asks",
        "bid_low",
        "bid_top",
        "bids",
        "changed_asks",
        "changed_bids",
        "u",
    )

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        #: best bid and lowest bid tick held (empty side: bid_top < bid_low)
        self.bid_top = 0
        self.bid_low = 1
        #: best ask and highest ask tick held (empty side: ask_top > ask_high)
        self.ask_top = 1
        self.ask_high = 0
        self.changed_bids: set[int] = set()
        self.changed_asks: set[int] = set()
        #: book update id, +1 per mutation batch (REST orderbook ``u``)
        self.u = 0

    # ----------------------------------------------------------------- queries
    @property
    def has_bids(self) -> bool:
        """True when the bid side holds at least one level."""
        return self.bid_top >= self.bid_low

    @property
    def has_asks(self) -> bool:
        """True when the ask side holds at least one level."""
        return self.ask_top <= self.ask_high

    def bid_range(self, depth: int) -> tuple[int, int]:
        """(low, high) ticks of the top ``depth`` bids; low > high when empty."""
        return max(self.bid_low, self.bid_top - depth + 1), self.bid_top

    def ask_range(self, depth: int) -> tuple[int, int]:
        """(low, high) ticks of the top ``depth`` asks; low > high when empty."""
        return self.ask_top, min(self.ask_high, self.ask_top + depth - 1)

    def top_bids(self, depth: int) -> list[tuple[int, int]]:
        """Best ``depth`` bids as (tick, lots), best first."""
        lo, hi = self.bid_range(depth)
        bids = self.bids
        return [(t, bids[t]) for t in range(hi, lo - 1, -1)]

    def top_asks(self, depth: int) -> list[tuple[int, int]]:
        """Best ``depth`` asks as (tick, lots), best first."""
        lo, hi = self.ask_range(depth)
        asks = self.asks
        return [(t, asks[t]) for t in range(lo, hi + 1)]

    # --------------------------------------------------------------- mutations
    def set_bid(self, tick: int, lots: int) -> None:
        """Overwrite the size of an existing bid level (lots > 0)."""
        self.bids[tick] = lots
        self.changed_bids.add(tick)

    def set_ask(self, tick: int, lots: int) -> None:
        """Overwrite the size of an existing ask level (lots > 0)."""
        self.asks[tick] = lots
        self.changed_asks.add(tick)

    def move_bids(self, top: int, depth: int, size: SizeFn) -> None:
        """Make the bid ladder span ``[top - depth + 1, top]``, adding levels via ``size()``."""
        bids, changed = self.bids, self.changed_bids
        low = top - depth + 1
        if not self.has_bids or top < self.bid_low or low > self.bid_top:
            for t in range(self.bid_low, self.bid_top + 1):
                del bids[t]
                changed.add(t)
            for t in range(top, low - 1, -1):
                bids[t] = size()
                changed.add(t)
        else:
            for t in range(self.bid_top, top, -1):  # top moved down: levels traded away
                del bids[t]
                changed.add(t)
            for t in range(self.bid_top + 1, top + 1):  # top moved up: new levels
                bids[t] = size()
                changed.add(t)
            for t in range(self.bid_low, low):  # trim the far end
                del bids[t]
                changed.add(t)
            for t in range(self.bid_low - 1, low - 1, -1):  # or extend it
                bids[t] = size()
                changed.add(t)
        self.bid_top, self.bid_low = top, low

    def move_asks(self, top: int, depth: int, size: SizeFn) -> None:
        """Make the ask ladder span ``[top, top + depth - 1]``, adding levels via ``size()``."""
        asks, changed = self.asks, self.changed_asks
        high = top + depth - 1
        if not self.has_asks or top > self.ask_high or high < self.ask_top:
            for t in range(self.ask_top, self.ask_high + 1):
                del asks[t]
                changed.add(t)
            for t in range(top, high + 1):
                asks[t] = size()
                changed.add(t)
        else:
            for t in range(self.ask_top, top):  # top moved up: levels lifted
                del asks[t]
                changed.add(t)
            for t in range(self.ask_top - 1, top - 1, -1):  # top moved down: new levels
                asks[t] = size()
                changed.add(t)
            for t in range(high + 1, self.ask_high + 1):  # trim the far end
                del asks[t]
                changed.add(t)
            for t in range(self.ask_high + 1, high + 1):  # or extend it
                asks[t] = size()
                changed.add(t)
        self.ask_top, self.ask_high = top, high

    def take_asks(self, lots: int, limit: int | None) -> list[tuple[int, int]]:
        """Consume up to ``lots`` from the best asks priced <= ``limit``; return the fills."""
        fills, self.ask_top = _take(
            self.asks, self.changed_asks, self.ask_top, self.ask_high, 1, lots, limit
        )
        return fills

    def take_bids(self, lots: int, limit: int | None) -> list[tuple[int, int]]:
        """Consume up to ``lots`` from the best bids priced >= ``limit``; return the fills."""
        fills, self.bid_top = _take(
            self.bids, self.changed_bids, self.bid_top, self.bid_low, -1, lots, limit
        )
        return fills

    def available_asks(self, limit: int | None) -> int:
        """Lots resting on the ask side at prices <= ``limit`` (all when None)."""
        hi = self.ask_high if limit is None else min(self.ask_high, limit)
        return sum(self.asks[t] for t in range(self.ask_top, hi + 1))

    def available_bids(self, limit: int | None) -> int:
        """Lots resting on the bid side at prices >= ``limit`` (all when None)."""
        lo = self.bid_low if limit is None else max(self.bid_low, limit)
        return sum(self.bids[t] for t in range(lo, self.bid_top + 1))


def _take(
    levels: dict[int, int],
    changed: set[int],
    top: int,
    end: int,
    step: int,
    lots: int,
    limit: int | None,
) -> tuple[list[tuple[int, int]], int]:
    """Walk one side from its best tick ``top`` towards its far end ``end`` (``step``: +1
    for asks, -1 for bids), taking up to ``lots`` at ticks not beyond ``limit``; return
    the (tick, lots) taken and the side's new best tick."""
    fills: list[tuple[int, int]] = []
    while lots > 0 and (end - top) * step >= 0:
        if limit is not None and (top - limit) * step > 0:
            break
        have = levels[top]
        take = min(have, lots)
        fills.append((top, take))
        lots -= take
        changed.add(top)
        if take == have:
            del levels[top]
            top += step
        else:
            levels[top] = have - take
    return fills, top
