"""Counters and latency figures the tasks update and the status task shows.

Plain attributes, no locks: every task runs in the one trio thread. Counters only
grow; the status task derives rates by differencing snapshots. Latency keeps a
bounded reservoir of the latest samples, so a long run costs constant memory.
"""

from __future__ import annotations

from collections import deque

import attrs

__all__ = ["LatencyStats", "Metrics"]

#: enough samples for a stable p99 without unbounded growth
_RESERVOIR = 4096


class LatencyStats:
    """Latest latency samples (seconds) with percentiles on demand."""

    def __init__(self, size: int = _RESERVOIR) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, seconds: float) -> None:
        """Record one sample."""
        self._samples.append(seconds)
        self.count += 1

    def percentile(self, pct: float) -> float | None:
        """The ``pct`` percentile (0..100) of the kept samples, None when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, round(pct / 100.0 * (len(ordered) - 1))))
        return ordered[index]


@attrs.define
class Metrics:
    """What the bot counts. Shown by the status panel, logged in summaries."""

    book_updates: int = 0
    trade_messages: int = 0
    market_dropped: int = 0
    parse_errors: int = 0
    reconnects: int = 0
    orders_placed: int = 0
    orders_filled: int = 0
    orders_failed: int = 0
    order_retries: int = 0
    entries: int = 0
    exits: int = 0
    realised_pnl: str = "0"
    tick_to_decision: LatencyStats = attrs.field(factory=LatencyStats)

    def summary(self) -> str:
        """One compact line for logs and the status panel."""
        p50 = self.tick_to_decision.percentile(50)
        p99 = self.tick_to_decision.percentile(99)
        latency = (
            f"tick->decision p50={p50 * 1e6:.0f}us p99={p99 * 1e6:.0f}us"
            if p50 is not None and p99 is not None
            else "tick->decision n/a"
        )
        return (
            f"book={self.book_updates} trades={self.trade_messages} "
            f"dropped={self.market_dropped} parse_err={self.parse_errors} "
            f"reconnects={self.reconnects} orders={self.orders_placed} "
            f"filled={self.orders_filled} failed={self.orders_failed} "
            f"entries={self.entries} exits={self.exits} pnl={self.realised_pnl} {latency}"
        )
