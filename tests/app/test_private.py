"""The private-stream task against a fake private WebSocket, under MockClock.

Repeated pushes reach the order's confirmation once; pushes of orders nobody waits
for are ignored; fills are logged once per execId; a reconnect resyncs; bad frames
are counted on top of the other streams' count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.execution import OrderWatch
from scalper.app.metrics import Metrics
from scalper.app.private import run_private
from scalper.bybit.rest import Credentials
from scalper.bybit.streams import PRIVATE_TOPICS, SeenSet
from scalper.core.model import OrderStatus, OrderUpdate

from .ws_fakes import POLICY, FakeWsServer, execution_frame, order_frame

LINK = "scalp-t1-e1"


class Private:
    def __init__(self, server: FakeWsServer, watch: OrderWatch, metrics: Metrics) -> None:
        self.server = server
        self.watch = watch
        self.metrics = metrics
        self.reconnects: list[str] = []

    async def on_reconnect(self, reason: str) -> None:
        self.reconnects.append(reason)


@asynccontextmanager
async def private_stream(metrics: Metrics | None = None) -> AsyncIterator[Private]:
    p = Private(FakeWsServer(), OrderWatch(), metrics or Metrics())
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(run_private, policy=POLICY, connect=p.server.connect),
            "wss://fake/v5/private",
            Credentials(api_key="key", api_secret="secret"),
            p.watch,
            p.on_reconnect,
            p.metrics,
        )
        yield p
        nursery.cancel_scope.cancel()


def _drain(receive: trio.MemoryReceiveChannel[OrderUpdate]) -> list[tuple[OrderStatus, str]]:
    out = []
    while True:
        try:
            u = receive.receive_nowait()
        except trio.WouldBlock:
            return out
        out.append((u.status, str(u.cum_exec_qty)))


@pytest.fixture
def info_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    yield lines
    logger.remove(handler)


def test_seen_set_is_bounded_and_forgets_the_oldest() -> None:
    seen = SeenSet(size=2)
    assert [seen.first_time(k) for k in ("a", "a", "b", "c")] == [True, False, True, True]
    assert seen.first_time("b") is False  # still remembered
    assert seen.first_time("a") is True  # forgotten: the window holds 2


async def test_authenticates_before_subscribing(autojump_clock: trio.testing.MockClock) -> None:
    async with private_stream() as p:
        ops = [op for op, _ in p.server.ws.ops]
        assert ops[:2] == ["auth", "subscribe"]
        assert p.server.ws.ops[1][1] == list(PRIVATE_TOPICS)


async def test_repeated_pushes_reach_the_waiting_order_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with private_stream() as p:
        ws = p.server.ws
        with p.watch.watch(LINK) as pushes:
            ws.push(order_frame(LINK, "New", "0", updated_ms=1, push_id="a"))
            ws.push(order_frame(LINK, "New", "0", updated_ms=1, push_id="b"))  # repeated
            ws.push(order_frame("scalp-t1-e9", "New", "0", updated_ms=1))  # nobody waits
            ws.push(order_frame(LINK, "PartiallyFilled", "0.4", updated_ms=2))
            ws.push(order_frame(LINK, "Filled", "1", updated_ms=3, push_id="c"))
            # a cancel racing the fill: Bybit sends Filled twice
            ws.push(order_frame(LINK, "Filled", "1", updated_ms=3, push_id="d"))
            await trio.testing.wait_all_tasks_blocked()
            assert _drain(pushes) == [
                (OrderStatus.NEW, "0"),
                (OrderStatus.PARTIALLY_FILLED, "0.4"),
                (OrderStatus.FILLED, "1"),
            ]
        # after the order's confirmation ended, its pushes go nowhere (and do not fail)
        ws.push(order_frame(LINK, "Filled", "1", updated_ms=4))
        await trio.testing.wait_all_tasks_blocked()
        assert p.metrics.parse_errors == 0


async def test_fills_are_logged_once_per_exec_id(
    autojump_clock: trio.testing.MockClock, info_lines: list[str]
) -> None:
    async with private_stream() as p:
        for exec_id in ("x1", "x1", "x2"):
            p.server.ws.push(execution_frame(LINK, exec_id))
        await trio.testing.wait_all_tasks_blocked()
    fills = [line for line in info_lines if line.startswith("fill: ")]
    assert fills == ["fill: Buy 1 @ 100 fee 0.02 (maker)"] * 2


async def test_reconnect_resyncs_and_subscribes_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with private_stream() as p:
        p.server.ws.drop()
        await trio.sleep(2)
        assert len(p.server.conns) == 2
        assert p.reconnects == ["private stream reconnected"]
        assert [op for op, _ in p.server.ws.ops][:2] == ["auth", "subscribe"]
        # and pushes on the new connection are delivered
        with p.watch.watch(LINK) as pushes:
            p.server.ws.push(order_frame(LINK, "Filled", "1", updated_ms=9))
            await trio.testing.wait_all_tasks_blocked()
            assert _drain(pushes) == [(OrderStatus.FILLED, "1")]


async def test_bad_frames_add_to_the_shared_parse_error_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    metrics = Metrics(parse_errors=5)  # the public stream counted five already
    async with private_stream(metrics) as p:
        p.server.ws.push('{"topic":"order","data":[{"orderId": 1')
        frame = order_frame(LINK, "Filled", "1")
        frame["data"][0]["qty"] = "lots"
        p.server.ws.push(frame)
        await trio.testing.wait_all_tasks_blocked()
        assert metrics.parse_errors == 7
