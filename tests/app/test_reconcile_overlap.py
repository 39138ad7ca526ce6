"""A position read that overlapped an order outcome is read again, not reported.

The bug this guards against (found by tests/bot/test_faults.py): a read requested after
an entry fill returned "holding" while the close was being filled; it reached the
engine after the close's OrderFilled, and the engine adopted a position that no longer
existed (then tried to close it: a reduce-only rejection). ``OrderEpoch`` counts
outcomes as they are reported; a read during which it moved is repeated.
"""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from scalper.app.reconcile import OrderEpoch, reconcile_once, run_reconcile
from scalper.core.model import Event, OpenOrders, PositionSnapshot, Side

from .fakes import FakeApi

HOLDING = PositionSnapshot(symbol="SOLUSDT", side=Side.BUY, size=Decimal(3), avg_price=Decimal(1))
FLAT = PositionSnapshot(symbol="SOLUSDT", side=None, size=Decimal(0))


class RacingApi(FakeApi):
    """The first ``races`` position reads see the old position while an order outcome
    is reported (the epoch moves); later reads see the new one."""

    def __init__(self, epoch: OrderEpoch, races: int) -> None:
        super().__init__()
        self.epoch = epoch
        self.races = races
        self.reads = 0

    async def open_positions(self) -> list[PositionSnapshot]:
        self.reads += 1
        await trio.sleep(0.01)
        if self.reads <= self.races:
            self.epoch.bump()  # the close's OrderFilled goes to the engine meanwhile
            return [HOLDING]
        return []


async def test_a_read_overlapping_an_outcome_is_read_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    epoch = OrderEpoch()
    api = RacingApi(epoch, races=1)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    positions = await reconcile_once(api, "SOLUSDT", report, epoch)
    assert positions == {}  # nothing open: reported flat
    assert reported == [FLAT, OpenOrders(symbol="SOLUSDT", order_link_ids=())]
    assert api.reads == 2


async def test_without_an_epoch_the_read_is_reported_as_is(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = RacingApi(OrderEpoch(), races=1)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    assert await reconcile_once(api, "SOLUSDT", report) == {"SOLUSDT": HOLDING}
    assert reported[0] == HOLDING


async def test_reads_that_keep_overlapping_are_given_up_and_retried_soon(
    autojump_clock: trio.testing.MockClock,
) -> None:
    epoch = OrderEpoch()
    api = RacingApi(epoch, races=4)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    send, receive = trio.open_memory_channel[str](1)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda **kw: run_reconcile(api, receive, report, 60.0, epoch=epoch, **kw)
        )
        send.send_nowait("SOLUSDT")
        await trio.sleep(1)
        assert api.reads == 4 and reported == []  # nothing stale was reported
        await trio.sleep(2)  # retried well before the 60 s interval
        assert api.reads == 5 and reported[0] == FLAT
        nursery.cancel_scope.cancel()
