"""The entry signal's inputs: a window of recent trades, its VWAP and the momentum.

This runs on every public trade, so it is float arithmetic with running sums (O(1)
per trade), never Decimal: the numbers are only compared against a threshold, they
never reach an order. The running sums are recomputed from the window every
``window`` evictions so floating-point drift from add/subtract cannot accumulate.

momentum = (last price - VWAP) / VWAP over the last ``window`` trades; the signal is
``ready`` once ``min_ticks`` trades have been seen since the last ``reset`` (a symbol
switch resets it: a VWAP mixing two symbols means nothing).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from operator import attrgetter

from .model import Trade

__all__ = ["SignalWindow"]

_PRICE_QTY: Callable[[Trade], tuple[float, float]] = attrgetter("price", "qty")


class SignalWindow:
    """Rolling trade window with VWAP and momentum (floats, O(1) per trade)."""

    def __init__(self, window: int = 100, min_ticks: int = 50) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 1 <= min_ticks <= window:
            raise ValueError(f"min_ticks must be in [1, window={window}], got {min_ticks}")
        self.window = window
        self.min_ticks = min_ticks
        self._trades: deque[tuple[float, float]] = deque()
        self._sum_pq = 0.0
        self._sum_q = 0.0
        self._evictions = 0
        self._last_price: float | None = None
        # the momentum is read on every event but changes only with the trades
        self._momentum: float | None = None
        self._stale = False

    def reset(self) -> None:
        """Forget every trade (symbol switch)."""
        self._trades.clear()
        self._sum_pq = 0.0
        self._sum_q = 0.0
        self._evictions = 0
        self._last_price = None
        self._stale = True

    def add(self, price: float, qty: float) -> None:
        """Add one trade; the oldest leaves the window once it is full."""
        self._add_pairs(((price, qty),))

    def add_trades(self, trades: Iterable[Trade]) -> None:
        """Add public trades, oldest first."""
        self._add_pairs(map(_PRICE_QTY, trades))

    def _add_pairs(self, pairs: Iterable[tuple[float, float]]) -> None:
        # The running sums live in locals for the whole batch (a trade frame carries
        # several trades): the same additions in the same order as one trade at a
        # time, so the floats are bit for bit those of a trade-by-trade update.
        trades = self._trades
        window = self.window
        count = len(trades)
        evictions = self._evictions
        sum_pq = self._sum_pq
        sum_q = self._sum_q
        last = self._last_price
        for pair in pairs:
            price, qty = pair
            trades.append(pair)
            sum_pq += price * qty
            sum_q += qty
            last = price
            if count < window:
                count += 1
                continue
            old_p, old_q = trades.popleft()
            sum_pq -= old_p * old_q
            sum_q -= old_q
            evictions += 1
            if evictions >= window:
                # Why: add/subtract of floats drifts; a full recompute every `window`
                # evictions keeps the sums exact to rounding at O(1) amortised cost.
                evictions = 0
                sum_pq = sum([p * q for p, q in trades])
                sum_q = sum([q for _, q in trades])
        self._stale = True  # (the momentum is a function of the window: recomputing is safe)
        self._evictions = evictions
        self._sum_pq = sum_pq
        self._sum_q = sum_q
        self._last_price = last

    @property
    def count(self) -> int:
        """Number of trades currently in the window."""
        return len(self._trades)

    @property
    def ready(self) -> bool:
        """True once ``min_ticks`` trades are in the window."""
        return len(self._trades) >= self.min_ticks

    @property
    def last_price(self) -> float | None:
        """Price of the newest trade, or None before any."""
        return self._last_price

    @property
    def vwap(self) -> float | None:
        """Volume-weighted average price of the window, or None with no volume."""
        if self._sum_q <= 0.0:
            return None
        return self._sum_pq / self._sum_q

    @property
    def momentum(self) -> float | None:
        """(last - VWAP) / VWAP once ready, else None."""
        if self._stale:
            self._stale = False
            self._momentum = self._compute_momentum()
        return self._momentum

    def _compute_momentum(self) -> float | None:
        if not self.ready or self._last_price is None:
            return None
        vwap = self.vwap
        if vwap is None or vwap <= 0.0:
            return None
        return (self._last_price - vwap) / vwap
