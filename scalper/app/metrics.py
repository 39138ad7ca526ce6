"""Counters and latency figures the tasks update and the status task shows.

Plain attributes, no locks: every task runs in the one trio thread. Counters only
grow; the status task derives rates by differencing snapshots. Latency keeps a
bounded reservoir of the latest samples, so a long run costs constant memory.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import attrs

__all__ = ["LatencyStats", "Metrics"]

#: enough samples for a stable p99 without unbounded growth
_RESERVOIR = 4096

#: a valid Prometheus metric name (exposition format 0.0.4)
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
#: HELP texts of the exported series; a field without one gets a generic text
_HELP: Mapping[str, str] = {
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
    "tick_to_decision": "Seconds from a market message's arrival to the engine's decision "
    "(quantiles over the latest samples).",
}
#: summary quantiles: (label, percentile for LatencyStats.percentile)
_QUANTILES = (("0.5", 50.0), ("0.99", 99.0))


class LatencyStats:
    """Latest latency samples (seconds) with percentiles on demand."""

    def __init__(self, size: int = _RESERVOIR) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        #: running sum of every sample (seconds), the Prometheus summary's ``_sum``
        self.total = 0.0

    def add(self, seconds: float) -> None:
        """Record one sample."""
        self._samples.append(seconds)
        self.count += 1
        self.total += seconds

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

    def to_prometheus(self, extra: Mapping[str, float] | None = None) -> str:
        """The metrics in Prometheus text exposition format 0.0.4, for ``GET /metrics``.

        Every int field is a counter ``scalper_<name>_total``; ``realised_pnl`` (and any
        float field) is a gauge ``scalper_<name>``; a ``LatencyStats`` field is a summary
        ``scalper_<name>_seconds`` with p50/p99 as ``quantile`` labels (``NaN`` before the
        first sample), ``_sum`` and ``_count``. Fields are found by introspection, so a
        counter added to the class is exported without touching this method. ``extra``
        adds gauges ``scalper_<key>`` (position size, engine state, ...); a key that is
        not a valid metric name or clashes with a built-in series raises ``ValueError``.
        """
        lines: list[str] = []
        families: set[str] = set()

        def family(name: str, kind: str, help_text: str) -> None:
            families.add(name)
            lines.append(f"# HELP {name} {_escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")

        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            help_text = _HELP.get(field.name, f"{field.name} (scalper metric).")
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                name = f"scalper_{field.name}_total"
                family(name, "counter", help_text)
                lines.append(f"{name} {value}")
            elif isinstance(value, float | str):
                name = f"scalper_{field.name}"
                family(name, "gauge", help_text)
                lines.append(f"{name} {_number(value)}")
            elif isinstance(value, LatencyStats):
                name = f"scalper_{field.name}_seconds"
                family(name, "summary", help_text)
                for label, pct in _QUANTILES:
                    quantile = value.percentile(pct)
                    shown = "NaN" if quantile is None else _number(quantile)
                    lines.append(f'{name}{{quantile="{label}"}} {shown}')
                lines.append(f"{name}_sum {_number(value.total)}")
                lines.append(f"{name}_count {value.count}")
        for key, gauge in (extra or {}).items():
            name = f"scalper_{key}"
            if not _METRIC_NAME.match(name):
                raise ValueError(f"not a valid metric name: {name!r}")
            clashes = name in families or any(
                name == f"{f}{suffix}" for f in families for suffix in ("_sum", "_count")
            )
            if clashes:
                raise ValueError(f"gauge {name!r} clashes with a built-in series")
            family(name, "gauge", f"{key} (scalper gauge).")
            lines.append(f"{name} {_number(gauge)}")
        return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    """HELP text escaping of format 0.0.4: backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | int | str) -> str:
    """A sample value as Prometheus writes it (``NaN``, ``+Inf``, Go-parsable floats)."""
    if isinstance(value, str):
        try:
            value = float(Decimal(value))
        except InvalidOperation:
            return "NaN"
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)
