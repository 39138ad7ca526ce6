"""The Prometheus endpoint: the exposition text, and a server no client can take down.

Server tests use a real loopback socket (port 0), httpx as the client, and bounded
waits (``trio.fail_after``); nothing asserts a duration.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial

import attrs
import httpx
import pytest
import trio
import trio.testing
from scalper.app.metrics_server import CONTENT_TYPE, serve_metrics

from scalper.app.metrics import Metrics

WAIT_S = 10.0  # generous bound on any single real-socket step

# ---------------------------------------------------------------- exposition format

_SAMPLE = re.compile(
    r'(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{quantile="(?P<q>[0-9.]+)"\})? '
    r"(?P<value>NaN|[+-]Inf|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"
)


def parse_exposition(text: str) -> dict[str, str]:
    """Check ``text`` against format 0.0.4 and return ``{series: value}``.

    Every sample belongs to the family declared by the HELP/TYPE lines just before it
    (a summary's ``_sum``/``_count`` included), no family is declared twice, and the
    text ends with a line feed.
    """
    assert text.endswith("\n")
    samples: dict[str, str] = {}
    families: dict[str, str] = {}
    current: tuple[str, str] | None = None
    lines = text[:-1].split("\n")
    for index, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in families, f"family {name} declared twice"
            assert lines[index + 1].startswith(f"# TYPE {name} ")
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary")
            families[name] = kind
            current = (name, kind)
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        assert current is not None
        family, kind = current
        name = match["name"]
        allowed = {family} | ({f"{family}_sum", f"{family}_count"} if kind == "summary" else set())
        assert name in allowed, f"{name} outside its family {family}"
        assert (match["q"] is not None) == (kind == "summary" and name == family)
        if kind == "counter":
            assert name.endswith("_total")
        key = f'{name}{{quantile="{match["q"]}"}}' if match["q"] else name
        assert key not in samples, f"duplicate series {key}"
        samples[key] = match["value"]
    return samples


def busy_metrics() -> Metrics:
    metrics = Metrics()
    metrics.book_updates = 1200
    metrics.trade_messages = 345
    metrics.market_dropped = 3
    metrics.orders_placed = 7
    metrics.orders_filled = 6
    metrics.orders_failed = 1
    metrics.realised_pnl = "-12.50"
    for micros in range(1, 101):  # 1 us .. 100 us
        metrics.tick_to_decision.add(micros / 1e6)
    return metrics


def test_every_counter_is_a_total_and_latency_is_a_summary() -> None:
    samples = parse_exposition(busy_metrics().to_prometheus())
    assert samples["scalper_book_updates_total"] == "1200"
    assert samples["scalper_trade_messages_total"] == "345"
    assert samples["scalper_market_dropped_total"] == "3"
    assert samples["scalper_orders_placed_total"] == "7"
    assert samples["scalper_orders_filled_total"] == "6"
    assert samples["scalper_orders_failed_total"] == "1"
    assert samples["scalper_reconnects_total"] == "0"
    assert samples["scalper_realised_pnl"] == "-12.5"
    # the quantiles are LatencyStats' own percentiles, written exactly
    p50, p99 = (busy_metrics().tick_to_decision.percentile(p) for p in (50, 99))
    assert samples['scalper_tick_to_decision_seconds{quantile="0.5"}'] == repr(p50)
    assert samples['scalper_tick_to_decision_seconds{quantile="0.99"}'] == repr(p99)
    assert p50 == pytest.approx(50e-6, abs=1.01e-6)
    assert p99 == pytest.approx(99e-6, abs=1.01e-6)
    assert samples["scalper_tick_to_decision_seconds_count"] == "100"
    assert float(samples["scalper_tick_to_decision_seconds_sum"]) == pytest.approx(5050e-6)
    # every int field of Metrics is exported: a counter added later shows up by itself
    int_fields = [f.name for f in attrs.fields(Metrics) if type(getattr(Metrics(), f.name)) is int]
    assert {f"scalper_{name}_total" for name in int_fields} <= set(samples)


def test_empty_latency_gives_nan_quantiles() -> None:
    samples = parse_exposition(Metrics().to_prometheus())
    assert samples['scalper_tick_to_decision_seconds{quantile="0.5"}'] == "NaN"
    assert samples['scalper_tick_to_decision_seconds{quantile="0.99"}'] == "NaN"
    assert samples["scalper_tick_to_decision_seconds_count"] == "0"


def test_extra_gauges_and_special_values() -> None:
    text = Metrics().to_prometheus(
        {"position_qty": 1.5, "engine_state": 2, "spread": math.inf, "daily_loss": -math.inf}
    )
    samples = parse_exposition(text)
    assert "# TYPE scalper_position_qty gauge" in text
    assert samples["scalper_position_qty"] == "1.5"
    assert samples["scalper_engine_state"] == "2.0"
    assert samples["scalper_spread"] == "+Inf"
    assert samples["scalper_daily_loss"] == "-Inf"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("bad name", "not a valid metric name"),
        ("book_updates_total", "clashes"),
        ("tick_to_decision_seconds_count", "clashes"),
        ("realised_pnl", "clashes"),
    ],
)
def test_bad_extra_gauge_names_are_refused(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Metrics().to_prometheus({key: 1.0})


def test_unparsable_pnl_is_nan_not_a_crash() -> None:
    metrics = Metrics()
    metrics.realised_pnl = "n/a"
    assert parse_exposition(metrics.to_prometheus())["scalper_realised_pnl"] == "NaN"


# ---------------------------------------------------------------- the server


@asynccontextmanager
async def running(
    metrics: Metrics, gauges: Callable[[], Mapping[str, float]] | None = None
) -> AsyncIterator[tuple[int, httpx.AsyncClient]]:
    """The server on an ephemeral loopback port, and a client for it."""
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT_S):
            port: int = await nursery.start(partial(serve_metrics, metrics, 0, gauges=gauges))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=WAIT_S
        ) as client:
            yield port, client
        nursery.cancel_scope.cancel()


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, return everything the server sends back before closing."""
    with trio.fail_after(WAIT_S):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            if request:
                await stream.send_all(request)
            received = b""
            while chunk := await stream.receive_some(65536):
                received += chunk
            return received


async def test_get_metrics_reports_the_live_counters() -> None:
    metrics = busy_metrics()
    async with running(metrics) as (port, client):
        assert port > 0
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE
        assert response.headers["connection"] == "close"
        samples = parse_exposition(response.text)
        assert samples["scalper_book_updates_total"] == "1200"
        assert samples["scalper_orders_filled_total"] == "6"
        assert float(samples['scalper_tick_to_decision_seconds{quantile="0.99"}']) == (
            pytest.approx(99e-6, abs=1e-6)
        )

        # read at request time: later bumps show in the next scrape
        metrics.book_updates += 5
        metrics.reconnects += 1
        for _ in range(1000):
            metrics.tick_to_decision.add(0.002)
        samples = parse_exposition((await client.get("/metrics?ignored=1")).text)
        assert samples["scalper_book_updates_total"] == "1205"
        assert samples["scalper_reconnects_total"] == "1"
        assert samples['scalper_tick_to_decision_seconds{quantile="0.5"}'] == "0.002"
        assert samples["scalper_tick_to_decision_seconds_count"] == "1100"


async def test_gauges_are_read_on_every_scrape() -> None:
    state = {"position_qty": 0.0}
    async with running(Metrics(), gauges=lambda: dict(state)) as (_, client):
        assert parse_exposition((await client.get("/metrics")).text)["scalper_position_qty"] == (
            "0.0"
        )
        state["position_qty"] = 3.25
        assert parse_exposition((await client.get("/metrics")).text)["scalper_position_qty"] == (
            "3.25"
        )


async def test_other_paths_are_404_and_other_methods_405() -> None:
    async with running(Metrics()) as (_, client):
        for path in ("/", "/metric", "/metrics/", "/favicon.ico"):
            response = await client.get(path)
            assert response.status_code == 404, path
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            response = await client.request(method, "/metrics", content=b"x=1")
            assert response.status_code == 405, method
            assert response.headers["allow"] == "GET"
            assert "scalper_" not in response.text
        head = await client.head("/metrics")
        assert head.status_code == 405
        assert head.content == b""
        # still serving
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000, b"431"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n", b"400"),
    ],
    ids=["garbage", "no-host", "bad-content-length", "huge-header", "tls-hello"],
)
async def test_malformed_requests_get_4xx_and_the_server_survives(
    request_bytes: bytes, status: bytes
) -> None:
    async with running(Metrics()) as (port, client):
        reply = await raw_exchange(port, request_bytes)
        assert reply.startswith(b"HTTP/1.1 " + status + b" "), reply[:80]
        assert b"scalper_" not in reply
        assert (await client.get("/metrics")).status_code == 200


async def test_clients_that_vanish_do_not_end_the_server() -> None:
    async with running(Metrics()) as (port, client):
        with trio.fail_after(WAIT_S):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.aclose()  # connect, send nothing, close
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET /metr")  # half a request line, then gone
            await stream.aclose()
        assert (await client.get("/metrics")).status_code == 200


async def test_a_failing_gauge_callback_is_a_500_not_a_crash() -> None:
    calls = []

    def gauges() -> Mapping[str, float]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("position unknown")
        return {"position_qty": 1.0}

    async with running(Metrics(), gauges=gauges) as (_, client):
        assert (await client.get("/metrics")).status_code == 500
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert parse_exposition(response.text)["scalper_position_qty"] == "1.0"


async def test_a_silent_client_is_dropped(autojump_clock: trio.testing.MockClock) -> None:
    # the virtual clock jumps over the server's request timeout while both sides wait
    async with running(Metrics()) as (port, client):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            assert await stream.receive_some(1024) == b""  # closed by the server
        assert (await client.get("/metrics")).status_code == 200


async def test_port_in_use_fails_before_started() -> None:
    async with running(Metrics()) as (port, _), trio.open_nursery() as nursery:
        with pytest.raises(OSError), trio.fail_after(WAIT_S):
            await nursery.start(serve_metrics, Metrics(), port)
