"""Issue 9, execution: exits never wait, cancels are bounded and survive a 110001, the
exchange stop is set in its own lane, and fees travel with the order events.

MockClock throughout: a 10 s confirmation and a 30 s resolve bound cost no real time,
and "placed within the same tick" is an exact statement about trio time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing

from scalper.app.execution import (
    ExecCommand,
    ExecutionConfig,
    OrderWatch,
    execute_order,
    protect_position,
    run_execution,
)
from scalper.app.metrics import Metrics
from scalper.bybit.errors import InvalidRequest, NetworkError, ServerBusy
from scalper.core.model import (
    CancelOrder,
    Event,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderType,
    PlaceOrder,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    ProtectPosition,
    Side,
    TimeInForce,
    TriggerBy,
)

from .fakes import FakeApi, Script

CONFIG = ExecutionConfig(
    poll_interval_s=0.5, confirm_timeout_s=10.0, cancel_timeout_s=5.0, resolve_timeout_s=30.0
)


def _entry(link_id: str = "scalp-t-e1") -> OrderIntent:
    return OrderIntent(
        symbol="SOLUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal("2"),
        price=Decimal("99.5"),
        time_in_force=TimeInForce.POST_ONLY,
        order_link_id=link_id,
    )


def _close(link_id: str = "scalp-t-x2") -> OrderIntent:
    return OrderIntent(
        symbol="SOLUSDT",
        side=Side.SELL,
        order_type=OrderType.MARKET,
        qty=Decimal("2"),
        time_in_force=TimeInForce.IOC,
        reduce_only=True,
        order_link_id=link_id,
    )


@attrs.define
class Lanes:
    api: FakeApi
    send: trio.MemorySendChannel[ExecCommand]
    reported: list[tuple[float, Event]] = attrs.field(factory=list)

    def events(self) -> list[Event]:
        return [e for _, e in self.reported]

    async def wait(self, predicate: Callable[[], bool], bound: float) -> None:
        """Wait (bounded, in virtual time) for something the lanes report."""
        with trio.fail_after(bound):
            while not predicate():  # noqa: ASYNC110 - reports have no event to wait on
                await trio.sleep(0.1)


@asynccontextmanager
async def lanes(api: FakeApi) -> AsyncIterator[Lanes]:
    send, receive = trio.open_memory_channel[ExecCommand](16)
    out = Lanes(api=api, send=send)

    async def report(event: Event) -> None:
        out.reported.append((trio.current_time(), event))

    async def on_fill(intent: OrderIntent, event: Event) -> None:
        pass

    async with trio.open_nursery() as nursery:
        await nursery.start(
            run_execution, api, OrderWatch(), receive, report, on_fill, CONFIG, Metrics()
        )
        yield out
        nursery.cancel_scope.cancel()


def _placed_at(api: FakeApi, link_id: str) -> float:
    return api.created_at[link_id]


async def test_a_stop_loss_close_is_placed_at_once_while_an_entry_confirmation_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The entry (a PostOnly that never fills) keeps its confirmation busy for 10 s; the
    # close of the position the engine adopted meanwhile must not wait for it.
    api = FakeApi()
    api.scripts["scalp-t-e1"] = Script(fill_after_s=None)
    api.scripts["scalp-t-x2"] = Script(fill_after_s=0.0, price=Decimal("98"))
    async with lanes(api) as run:
        start = trio.current_time()
        await run.send.send(PlaceOrder(intent=_entry()))
        await trio.sleep(1.0)
        await run.send.send(PlaceOrder(intent=_close()))
        await trio.testing.wait_all_tasks_blocked()
        # placed in the same trio instant it was sent: nothing queued it
        assert _placed_at(api, "scalp-t-x2") - start == pytest.approx(1.0)
        await run.wait(lambda: any(isinstance(e, OrderFilled) for e in run.events()), 2.0)
        filled_at = next(t for t, e in run.reported if isinstance(e, OrderFilled))
        assert filled_at - start < 2.0  # confirmed on its first poll, long before 10 s
        assert not any(
            isinstance(e, OrderFailed) and e.order_link_id == "scalp-t-e1" for e in run.events()
        ), "the entry is still being confirmed"


async def test_a_cancel_whose_reads_keep_failing_ends_within_its_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A degraded exchange: the entry never fills, every cancel and every read fails.
    # The outcome must still come, as "unclear", within confirm + resolve bounds.
    api = FakeApi()
    api.default = Script(fill_after_s=None, cancel_failures=10_000, reads_fail=True)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    start = trio.current_time()
    with trio.fail_after(CONFIG.confirm_timeout_s + CONFIG.resolve_timeout_s + 1):
        event = await execute_order(api, OrderWatch(), _entry(), CONFIG, report, Metrics())
    assert isinstance(event, OrderFailed)
    assert event.reason.startswith("unclear:")
    assert event.filled_qty == 0
    elapsed = trio.current_time() - start
    assert CONFIG.confirm_timeout_s + CONFIG.resolve_timeout_s - 1 <= elapsed


async def test_an_unclear_end_carries_the_fill_last_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Reads work during the confirmation (a partial fill is seen), then the exchange
    # degrades: the unclear end still reports the partial as filled.
    api = FakeApi()
    api.default = Script(fill_after_s=1.0, fill_qty=Decimal("0.5"), cancel_failures=10_000)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    async def degrade() -> None:
        await trio.sleep(CONFIG.confirm_timeout_s + 0.1)
        api.default.reads_fail = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(degrade)
        event = await execute_order(api, OrderWatch(), _entry(), CONFIG, report, Metrics())
    assert isinstance(event, OrderFailed)
    assert event.reason.startswith("unclear:")
    assert event.filled_qty == Decimal("0.5")
    assert isinstance(reported[0], OrderPartiallyFilled)


async def test_a_cancel_that_overtakes_its_create_is_retried_until_the_order_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The create takes 1 s; the engine's cancel (a Halt, say) arrives after 0.2 s and
    # Bybit answers 110001 for an order it has not seen yet. The cancel must wait for
    # the create, find the order and cancel it, not leave it resting until the timeout.
    api = FakeApi()
    api.default = Script(fill_after_s=None, place_delay_s=1.0)
    async with lanes(api) as run:
        start = trio.current_time()
        await run.send.send(PlaceOrder(intent=_entry()))
        await trio.sleep(0.2)
        await run.send.send(CancelOrder(symbol="SOLUSDT", order_link_id="scalp-t-e1"))
        await run.wait(lambda: bool(run.reported), 5.0)
        first = [t for t, _ in api.cancel_calls]
        assert first[0] - start == pytest.approx(0.2)  # the one that got 110001
        assert api.cancelled["scalp-t-e1"] - start == pytest.approx(1.0)  # the retry
        event = run.events()[0]
        assert isinstance(event, OrderFailed)
        assert run.reported[0][0] - start < 2.0  # ended by the cancel, not at 10 s


async def test_a_110001_for_an_order_that_exists_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Bybit may answer 110001 for a live order (the cancel overtook the create on its
    # side): the cancel reads the order, sees it live and cancels again.
    api = FakeApi()
    api.default = Script(fill_after_s=None, cancel_not_found=1)
    async with lanes(api) as run:
        start = trio.current_time()
        await run.send.send(PlaceOrder(intent=_entry()))
        await trio.sleep(1.0)
        await run.send.send(CancelOrder(symbol="SOLUSDT", order_link_id="scalp-t-e1"))
        await run.wait(lambda: bool(run.reported), 5.0)
        assert len(api.cancel_calls) >= 2
        assert "scalp-t-e1" in api.cancelled
        assert run.reported[0][0] - start < 3.0


async def test_a_cancel_of_an_order_that_never_existed_ends_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    async with lanes(api) as run:
        start = trio.current_time()
        await run.send.send(CancelOrder(symbol="SOLUSDT", order_link_id="scalp-old-e9"))
        await trio.testing.wait_all_tasks_blocked()
        assert len(api.cancel_calls) == 1
        assert trio.current_time() == start


def _protect(stop: str = "95") -> ProtectPosition:
    return ProtectPosition(
        symbol="SOLUSDT", stop_loss=Decimal(stop), trigger_by=TriggerBy.MARK_PRICE
    )


async def test_protect_position_sets_the_exchange_stop_and_reports_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.positions["SOLUSDT"] = PositionSnapshot(
        symbol="SOLUSDT", side=Side.BUY, size=Decimal(2), avg_price=Decimal(100)
    )
    async with lanes(api) as run:
        # the entry lane is busy with a confirmation: the stop does not wait for it
        api.scripts["scalp-t-e1"] = Script(fill_after_s=None)
        await run.send.send(PlaceOrder(intent=_entry()))
        await trio.sleep(0.5)
        start = trio.current_time()
        await run.send.send(_protect())
        await trio.testing.wait_all_tasks_blocked()
        assert [(c.symbol, c.stop_loss, c.trigger_by) for c in api.stop_calls] == [
            ("SOLUSDT", Decimal(95), TriggerBy.MARK_PRICE)
        ]
        assert api.stop_calls[0].at == start
        assert run.events() == [ProtectionSet(symbol="SOLUSDT", stop_loss=Decimal(95))]
    assert api.positions["SOLUSDT"].stop_loss == Decimal(95)


async def test_a_refused_stop_is_reported_as_protection_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.positions["SOLUSDT"] = PositionSnapshot(
        symbol="SOLUSDT", side=Side.BUY, size=Decimal(2), avg_price=Decimal(100)
    )
    api.stop_errors = [
        InvalidRequest(
            10001,
            "StopLoss:9500000 set for Buy position should lower than base_price",
            "/v5/position/trading-stop",
        )
    ]
    event = await protect_position(api, _protect(), CONFIG)
    assert isinstance(event, ProtectionFailed)
    assert event.symbol == "SOLUSDT"
    assert "10001" in event.reason and "lower than base_price" in event.reason
    assert len(api.stop_calls) == 1  # a refusal is not retried


async def test_transient_stop_failures_are_retried_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.stop_errors = [
        NetworkError("reset"),
        ServerBusy(10006, "busy", "/v5/position/trading-stop"),
    ]
    event = await protect_position(api, _protect(), CONFIG)
    assert event == ProtectionSet(symbol="SOLUSDT", stop_loss=Decimal(95))
    assert len(api.stop_calls) == 3

    api = FakeApi()
    api.stop_errors = [NetworkError("reset")] * 10
    start = trio.current_time()
    assert await protect_position(api, _protect(), CONFIG) is None  # the next read re-asks
    assert len(api.stop_calls) == CONFIG.protect_attempts
    assert trio.current_time() - start <= CONFIG.protect_timeout_s


async def test_the_order_fee_travels_with_the_order_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=0.2, fee=Decimal("0.1101"))
    event = await execute_order(api, OrderWatch(), _close(), CONFIG, lambda e: _noop(e), Metrics())
    assert isinstance(event, OrderFilled)
    assert event.fee == Decimal("0.1101")

    api = FakeApi()
    api.default = Script(fill_after_s=1.0, fill_qty=Decimal("0.5"), fee=Decimal("0.02"))
    seen: list[Event] = []

    async def report(e: Event) -> None:
        seen.append(e)

    event = await execute_order(api, OrderWatch(), _entry(), CONFIG, report, Metrics())
    assert isinstance(event, OrderFailed)
    assert event.fee == Decimal("0.02")
    assert isinstance(seen[0], OrderPartiallyFilled) and seen[0].fee == Decimal("0.02")


async def _noop(_event: Event) -> None:
    return None


async def test_a_stop_refused_for_a_zero_position_reports_the_position_flat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The position was closed outside the bot between its fill and the stop: that is
    # an external close for the engine to notice, not a position to close "at once".
    api = FakeApi()
    api.stop_errors = [
        InvalidRequest(10001, "can not set tp/sl/ts for zero position", "/v5/position/trading-stop")
    ]
    event = await protect_position(api, _protect(), CONFIG)
    assert event == PositionSnapshot(symbol="SOLUSDT", side=None, size=Decimal(0))
