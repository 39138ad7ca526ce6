"""Position verification runs every interval, on request, retries failures, sweeps at start."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from scalper.app.reconcile import run_reconcile, startup_sweep
from scalper.bybit.errors import NetworkError
from scalper.core.model import (
    Event,
    OpenOrders,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSnapshot,
    Side,
)

from .fakes import FakeApi


class CountingApi(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[float] = []
        self.fail_next = 0

    async def open_positions(self) -> list[PositionSnapshot]:
        self.reads.append(trio.current_time())
        if self.fail_next:
            self.fail_next -= 1
            raise NetworkError("connection reset")
        return await super().open_positions()


async def test_periodic_and_requested_reads_coalesce(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = CountingApi()
    api.positions["SOLUSDT"] = PositionSnapshot(
        symbol="SOLUSDT", side=Side.BUY, size=Decimal("3"), avg_price=Decimal("100")
    )
    send, receive = trio.open_memory_channel[str](1)
    events: list[Event] = []

    async def report(event: Event) -> None:
        events.append(event)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(run_reconcile, api, receive, report, 60.0)
        send.send_nowait("SOLUSDT")  # a request: read at once
        await trio.testing.wait_all_tasks_blocked()
        send.send_nowait("SOLUSDT")  # straight to the waiting task
        send.send_nowait("SOLUSDT")  # buffered: the channel holds one
        with pytest.raises(trio.WouldBlock):  # a burst coalesces: one read is pending anyway
            send.send_nowait("SOLUSDT")
        await trio.sleep(130)
        nursery.cancel_scope.cancel()
    offsets = [round(t - start, 3) for t in api.reads]
    # the first request, then the two queued behind it coalesced into one read,
    # then one every 60 s after the last read
    assert offsets == [0, 0, 60, 120]
    assert events[0] == api.positions["SOLUSDT"]
    assert events[1] == OpenOrders(symbol="SOLUSDT", order_link_ids=())


async def test_failed_read_is_retried_soon_not_after_a_whole_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = CountingApi()
    api.fail_next = 2
    send, receive = trio.open_memory_channel[str](1)
    events: list[Event] = []

    async def report(event: Event) -> None:
        events.append(event)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(run_reconcile, api, receive, report, 60.0)
        send.send_nowait("SOLUSDT")
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [round(t - start) for t in api.reads] == [0, 2, 4]
    assert len(events) == 2  # the third read succeeded and reported position + orders


def _order(link_id: str, symbol: str = "SOLUSDT") -> OrderUpdate:
    return OrderUpdate(
        symbol=symbol,
        order_id="x" + link_id,
        order_link_id=link_id,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        status=OrderStatus.NEW,
        qty=Decimal(1),
        price=Decimal(1),
    )


async def test_startup_sweep_cancels_only_our_strays_and_returns_positions() -> None:
    api = FakeApi()
    cancelled: list[str] = []

    async def cancel(symbol: str, link_id: str) -> None:
        cancelled.append(link_id)

    api.cancel_order = cancel  # type: ignore[method-assign]
    api.open_list = [
        _order("scalp-old-e1"),
        _order("manual-1"),
        _order("", "XRPUSDT"),
        _order("scalp-old-x2", "XRPUSDT"),
    ]
    held = PositionSnapshot(
        symbol="XRPUSDT", side=Side.SELL, size=Decimal(10), avg_price=Decimal("0.5")
    )
    api.positions = {
        "XRPUSDT": held,
        "SOLUSDT": PositionSnapshot(symbol="SOLUSDT", side=None, size=Decimal(0)),
    }
    positions = await startup_sweep(api, "scalp")
    assert cancelled == ["scalp-old-e1", "scalp-old-x2"]
    assert positions == [held]
