"""``/metrics`` through prometheus-client: the process collector, every ``scalper_*``
series read live at scrape time, histograms with cumulative buckets, and the REST
probe (order round trip, rate-limit headroom) on httpx's event hooks."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from scalper.app.metrics import BUCKETS_S, LatencyStats
from scalper.app.prom import HttpProbe, RateLimit, build_registry, render
from scalper.core.model import Side

from .test_remote_core import Harness

D = Decimal


def scrape(
    h: Harness, probe: HttpProbe | None = None
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = render(build_registry(h.control, probe)).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_latency_buckets_are_cumulative_and_end_with_inf() -> None:
    stats = LatencyStats()
    for seconds in (0.00004, 0.0002, 0.0002, 3.0, 99.0):
        stats.add(seconds)
    buckets = dict(stats.cumulative_buckets())
    assert buckets[repr(BUCKETS_S[0])] == 1  # 40 us <= 50 us
    assert buckets["0.00025"] == 3
    assert buckets["2.5"] == 3 and buckets["5.0"] == 4
    assert buckets["+Inf"] == 5 == stats.count


async def test_series_follow_the_engine_at_scrape_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness()
    h.metrics.orders_placed = 7
    h.metrics.parse_errors = 2
    for micros in (10, 20, 2000):
        h.metrics.tick_to_decision.add(micros / 1e6)
    series = scrape(h)
    assert "process_resident_memory_bytes" in series and "process_open_fds" in series
    assert series["scalper_orders_placed_total"][()] == 7
    assert series["scalper_parse_errors_total"][()] == 2
    assert series["scalper_engine_state"][(("state", "Idle"),)] == 1
    assert series["scalper_engine_state"][(("state", "Halted"),)] == 0
    assert series["scalper_paused"][()] == 0 and series["scalper_position_size"][()] == 0
    assert series["scalper_tick_to_decision_seconds_count"][()] == 3
    assert series["scalper_tick_to_decision_seconds_bucket"][(("le", "0.0025"),)] == 3
    assert series["scalper_tick_to_decision_seconds_bucket"][(("le", "0.001"),)] == 2
    assert series["scalper_daily_loss_headroom_usd"][()] == 100
    # a short position and a pause show on the next scrape
    await h.control.execute("pause", "tty")
    await h.control.execute("resume", "tty")
    await h.open_position(Side.SELL)
    await h.control.execute("pause", "tty")
    series = scrape(h)
    assert series["scalper_position_size"][()] == -10
    assert series["scalper_position_notional_usd"][()] == 1000
    assert series["scalper_position_entry_price"][()] == 100
    assert series["scalper_position_stop_price"][()] == pytest.approx(100.5)
    assert series["scalper_paused"][()] == 1
    assert series["scalper_engine_state"][(("state", "PositionOpen"),)] == 1


async def test_probe_times_orders_and_reads_rate_limit_headers() -> None:
    probe = HttpProbe()

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "7"}
        return httpx.Response(200, json={"retCode": 0}, headers=headers)

    async with httpx.AsyncClient(
        base_url="http://x", transport=httpx.MockTransport(handler), event_hooks=probe.event_hooks()
    ) as client:
        await client.post("/v5/order/create", json={})
        await client.get("/v5/market/tickers")
    assert probe.latency.count == 1  # only order placement is the order round trip
    assert probe.rate_limits["/v5/order/create"].remaining == 7


async def test_probe_series_are_exported(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    probe = HttpProbe()
    probe.latency.add(0.02)
    probe.rate_limits["/v5/order/create"] = RateLimit(limit=10, remaining=3)
    series = scrape(h, probe)
    assert series["scalper_order_round_trip_seconds_count"][()] == 1
    assert series["scalper_order_round_trip_seconds_bucket"][(("le", "0.025"),)] == 1
    assert series["scalper_rate_limit_remaining"][(("path", "/v5/order/create"),)] == 3
    assert series["scalper_rate_limit_limit"][(("path", "/v5/order/create"),)] == 10
