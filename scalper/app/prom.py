"""``GET /metrics``: Prometheus exposition through prometheus-client.

Each bot gets its own ``CollectorRegistry`` (no module-level global, so two bots in
one test process do not clash) with prometheus-client's ``ProcessCollector``
(``process_resident_memory_bytes``, CPU seconds, open fds) and one custom collector
that reads the bot's figures at scrape time: the status panel's ``Metrics``, the
engine through the control core, and the REST probe below. Reading at scrape time
keeps the trading path free of metric calls beyond the counters it already bumps.

``HttpProbe`` hangs on the REST client's httpx event hooks: it times order placement
(request sent to reply read, a histogram) and keeps the last ``X-Bapi-Limit*`` headers
per path (the rate-limit headroom), without touching the client's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import httpx
import trio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..core.model import EngineState
from .metrics import HELP, LatencyStats
from .remote import Control, day_net_pnl

__all__ = ["CONTENT_TYPE", "HttpProbe", "RateLimit", "build_registry", "render"]

#: what prometheus-client writes (text format 0.0.4)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: the REST path timed as the order round trip
ORDER_PATH = "/v5/order/create"
#: Metrics fields exported as counters ``scalper_<name>_total``
_COUNTERS = (
    "book_updates",
    "trade_messages",
    "market_dropped",
    "parse_errors",
    "reconnects",
    "orders_placed",
    "orders_filled",
    "orders_failed",
    "order_retries",
    "entries",
    "exits",
)


@attrs.frozen(kw_only=True)
class RateLimit:
    """The last rate-limit headers of one REST path."""

    limit: int
    remaining: int


class HttpProbe:
    """httpx event hooks: order round-trip timing and rate-limit headroom per path."""

    def __init__(self) -> None:
        self.latency = LatencyStats()
        self.rate_limits: dict[str, RateLimit] = {}

    def event_hooks(self) -> dict[str, list[Any]]:
        """The ``event_hooks`` argument of ``httpx.AsyncClient``."""
        return {"request": [self._on_request], "response": [self._on_response]}

    async def _on_request(self, request: httpx.Request) -> None:
        request.extensions["scalper_sent_at"] = trio.current_time()

    async def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        sent = request.extensions.get("scalper_sent_at")
        if path == ORDER_PATH and isinstance(sent, float):
            self.latency.add(trio.current_time() - sent)
        limit = response.headers.get("X-Bapi-Limit")
        remaining = response.headers.get("X-Bapi-Limit-Status")
        if limit and remaining and limit.isdigit() and remaining.isdigit():
            self.rate_limits[path] = RateLimit(limit=int(limit), remaining=int(remaining))


def _histogram(name: str, help_text: str, stats: LatencyStats) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text)
    family.add_metric([], stats.cumulative_buckets(), sum_value=stats.total)
    return family


@attrs.define(eq=False)
class _ScalperCollector(Collector):
    """Every ``scalper_*`` series, read from the live objects at scrape time."""

    _control: Control
    _probe: HttpProbe | None

    def collect(self) -> Iterator[Metric]:
        control = self._control
        engine = control.engine
        metrics = control.metrics
        for field in _COUNTERS:
            yield CounterMetricFamily(
                f"scalper_{field}", HELP.get(field, field), value=getattr(metrics, field)
            )
        yield CounterMetricFamily(
            "scalper_notices_dropped",
            "Notifications dropped because a consumer (Telegram) was behind.",
            value=control.notifier.dropped,
        )
        state = GaugeMetricFamily(
            "scalper_engine_state", "1 for the engine's current state.", labels=["state"]
        )
        for member in EngineState:
            state.add_metric([member.value], 1.0 if engine.state is member else 0.0)
        yield state
        yield GaugeMetricFamily("scalper_paused", "1 while entries are paused.", engine.paused)
        halted = engine.state is EngineState.HALTED
        yield GaugeMetricFamily("scalper_halted", "1 once the engine halted.", halted)
        position = engine.position
        size = 0.0
        notional = 0.0
        entry = float("nan")
        if position is not None:
            size = float(position.size) * position.side.sign
            if position.entry_price is not None:
                entry = float(position.entry_price)
                notional = abs(size) * entry
        yield GaugeMetricFamily(
            "scalper_position_size", "Open position, contracts (+ long, - short).", size
        )
        yield GaugeMetricFamily(
            "scalper_position_notional_usd", "Open position notional at entry (USD).", notional
        )
        yield GaugeMetricFamily("scalper_position_entry_price", "Entry price (NaN: flat).", entry)
        stop = engine.stop_price
        yield GaugeMetricFamily(
            "scalper_position_stop_price",
            "Stop-loss price (NaN: flat).",
            float("nan") if stop is None else stop,
        )
        yield GaugeMetricFamily(
            "scalper_unrealised_pnl_usd", "Unrealised PnL (USD).", float(engine.unrealised_pnl())
        )
        now = int(control.clock_ms())
        day = day_net_pnl(engine, now)
        limit = engine.config.risk.max_daily_loss_usd
        yield GaugeMetricFamily(
            "scalper_day_net_pnl_usd", "The day's PnL as the risk gate counts it (USD).", float(day)
        )
        yield GaugeMetricFamily(
            "scalper_daily_loss_headroom_usd",
            "Loss still allowed today before the kill switch (USD).",
            float(limit + min(day, Decimal(0))),
        )
        yield GaugeMetricFamily(
            "scalper_session_net_pnl_usd",
            "Realised PnL minus fees of this run (USD).",
            float(control.pnl.net),
        )
        yield _histogram(
            "scalper_tick_to_decision_seconds",
            HELP["tick_to_decision"],
            metrics.tick_to_decision,
        )
        yield _histogram(
            "scalper_order_round_trip_seconds",
            HELP["order_round_trip"],
            self._probe.latency if self._probe is not None else LatencyStats(),
        )
        if self._probe is not None:
            remaining = GaugeMetricFamily(
                "scalper_rate_limit_remaining",
                "Requests left in the current window (X-Bapi-Limit-Status), per path.",
                labels=["path"],
            )
            limits = GaugeMetricFamily(
                "scalper_rate_limit_limit",
                "Requests allowed per window (X-Bapi-Limit), per path.",
                labels=["path"],
            )
            for path, rate in sorted(self._probe.rate_limits.items()):
                remaining.add_metric([path], rate.remaining)
                limits.add_metric([path], rate.limit)
            yield remaining
            yield limits


def build_registry(control: Control, probe: HttpProbe | None = None) -> CollectorRegistry:
    """A registry with the process collector and every ``scalper_*`` series."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    registry.register(_ScalperCollector(control, probe))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The exposition text of ``registry``."""
    return generate_latest(registry)
