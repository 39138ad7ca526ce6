"""Counters and latency figures the tasks update and the status task shows.

Plain attributes, no locks: every task runs in the one trio thread. Counters only
grow; the status task derives rates by differencing snapshots. Latency keeps a
bounded reservoir of the latest samples, so a long run costs constant memory.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Mapping

import attrs

__all__ = ["BUCKETS_S", "HELP", "LatencyStats", "Metrics"]

#: enough samples for a stable p99 without unbounded growth
_RESERVOIR = 4096
#: samples ``add`` keeps before it counts them in
_FOLD_AT = 256
#: histogram bucket upper bounds (seconds): 50 us .. 10 s
BUCKETS_S: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

#: HELP texts of the exported series (``prom.py``); a field without one gets a generic text
HELP: Mapping[str, str] = {
    "book_updates": "Order book messages received.",
    "trade_messages": "Public trade messages received.",
    "market_dropped": "Market messages dropped because the strategy was behind.",
    "parse_errors": "Wire messages that failed to parse.",
    "reconnects": "WebSocket reconnects and resyncs.",
    "orders_placed": "Orders sent to the exchange.",
    "orders_filled": "Orders confirmed filled.",
    "orders_failed": "Orders rejected, cancelled or timed out.",
    "order_retries": "Order requests retried after a retryable error.",
    "entries": "Positions entered.",
    "exits": "Positions closed.",
    "realised_pnl": "Realised PnL of this session (USD).",
    "tick_to_decision": "Seconds from a market message's arrival to the engine's decision.",
    "order_round_trip": "Seconds from sending an order to reading the exchange's reply.",
}


class LatencyStats:
    """Latest latency samples (seconds) with percentiles on demand.

    Every sample is also counted in fixed histogram buckets (``BUCKETS_S``, upper
    bounds in seconds), which ``/metrics`` exports as a Prometheus histogram: unlike
    the reservoir, bucket counts aggregate across scrapes and instances.

    A sample is only kept when it comes (``record``, a bound ``list.append``: no
    Python call level, for a path that records one per market message) and counted
    into all of the above in order, together, at the next read or ``fold``: at a
    steady rate each message is its own cold wake-up, where the bookkeeping cost more
    than it does for a batch. ``add`` folds past ``_FOLD_AT`` kept samples; a caller
    of ``record`` folds on its own turns (the strategy runner on its timer).
    """

    def __init__(self, size: int = _RESERVOIR) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._count = 0
        self._total = 0.0
        self._buckets = [0] * (len(BUCKETS_S) + 1)
        self._fresh: list[float] = []
        #: keep one sample (seconds), counted at the next read or ``fold``
        self.record: Callable[[float], None] = self._fresh.append

    def add(self, seconds: float) -> None:
        """Record one sample."""
        fresh = self._fresh
        fresh.append(seconds)
        if len(fresh) >= _FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Count the kept samples in, oldest first (as one ``add`` each would have)."""
        fresh = self._fresh
        if not fresh:
            return
        self._samples.extend(fresh)
        self._count += len(fresh)
        total = self._total
        buckets = self._buckets
        for seconds in fresh:
            total += seconds
            buckets[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self._total = total
        fresh.clear()

    @property
    def unfolded(self) -> int:
        """Samples recorded and not counted in yet (bounded by whoever folds)."""
        return len(self._fresh)

    @property
    def count(self) -> int:
        """Samples recorded so far."""
        self.fold()
        return self._count

    @property
    def total(self) -> float:
        """Running sum of every sample (seconds), the histogram's ``_sum``."""
        self.fold()
        return self._total

    @property
    def bucket_counts(self) -> list[int]:
        """Samples per bucket (not cumulative); the last one is +Inf."""
        self.fold()
        return self._buckets

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as Prometheus wants."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*BUCKETS_S, math.inf), self.bucket_counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else repr(bound), running))
        return out

    def percentile(self, pct: float) -> float | None:
        """The ``pct`` percentile (0..100) of the kept samples, None when empty."""
        self.fold()
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

    def count_parse_error(self, kind: str) -> None:
        """A stream skipped a frame it could not parse (``ParseStats`` calls this)."""
        self.parse_errors += 1

    def _latency_us(self) -> tuple[float, float] | None:
        """Tick-to-decision p50 and p99 in microseconds, None before the first sample."""
        p50 = self.tick_to_decision.percentile(50)
        p99 = self.tick_to_decision.percentile(99)
        if p50 is None or p99 is None:
            return None
        return p50 * 1e6, p99 * 1e6

    def compact(self) -> str:
        """The status panel's short form: what matters first, it may be cut at the edge."""
        us = self._latency_us()
        latency = f"{us[0]:.0f}/{us[1]:.0f}us" if us else "-"
        return (
            f"pnl {self.realised_pnl} | orders {self.orders_placed} "
            f"({self.orders_filled} filled, {self.orders_failed} failed) | "
            f"book {self.book_updates} trades {self.trade_messages} drop {self.market_dropped} "
            f"err {self.parse_errors} reconn {self.reconnects} | p50/p99 {latency}"
        )

    def summary(self) -> str:
        """One line of every counter, for summary log lines and the journal."""
        us = self._latency_us()
        latency = (
            f"tick->decision p50={us[0]:.0f}us p99={us[1]:.0f}us" if us else "tick->decision n/a"
        )
        return (
            f"book={self.book_updates} trades={self.trade_messages} "
            f"dropped={self.market_dropped} parse_err={self.parse_errors} "
            f"reconnects={self.reconnects} orders={self.orders_placed} "
            f"filled={self.orders_filled} failed={self.orders_failed} "
            f"entries={self.entries} exits={self.exits} pnl={self.realised_pnl} {latency}"
        )
