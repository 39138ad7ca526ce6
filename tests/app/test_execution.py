"""Order confirmation: filled only on Filled, the 10 s bound, cancel and true fill on timeout."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from scalper.app.execution import ExecutionConfig, OrderWatch, execute_order, run_execution
from scalper.app.metrics import Metrics
from scalper.core.model import (
    CancelOrder,
    Event,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)

from .fakes import FakeApi, Script

CONFIG = ExecutionConfig(poll_interval_s=0.5, confirm_timeout_s=10.0, cancel_timeout_s=5.0)


def _intent(link_id: str = "scalp-t-1", post_only: bool = False) -> OrderIntent:
    if post_only:
        return OrderIntent(
            symbol="SOLUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=Decimal("2"),
            price=Decimal("99.5"),
            time_in_force=TimeInForce.POST_ONLY,
            order_link_id=link_id,
        )
    return OrderIntent(
        symbol="SOLUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty=Decimal("2"),
        time_in_force=TimeInForce.IOC,
        order_link_id=link_id,
    )


async def _run(
    api: FakeApi, intent: OrderIntent, watch: OrderWatch | None = None
) -> tuple[Event, list[Event]]:
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    event = await execute_order(api, watch or OrderWatch(), intent, CONFIG, report, Metrics())
    return event, reported


async def test_market_order_reported_filled_only_once_status_is_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=1.2, price=Decimal("101"))
    start = trio.current_time()
    event, _ = await _run(api, _intent())
    # the exchange's order id rides along: the engine matches its own close's closed-PnL
    # row by it (else that close would count twice, and look like an outside close)
    assert event == OrderFilled(
        order_link_id="scalp-t-1",
        filled_qty=Decimal("2"),
        avg_price=Decimal("101"),
        order_id="id-scalp-t-1",
    )
    # polled at 0.5, 1.0 (New) and 1.5 (Filled): not before the status said Filled
    assert api.polls == 3
    assert trio.current_time() - start == pytest.approx(1.5)


async def test_post_only_that_never_fills_is_cancelled_at_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=None)
    start = trio.current_time()
    event, _ = await _run(api, _intent(post_only=True))
    assert isinstance(event, OrderFailed)
    assert event.filled_qty == 0
    assert event.reason.startswith("timeout: Cancelled")
    assert api.cancelled["scalp-t-1"] - start == pytest.approx(10.0)
    assert api.view("scalp-t-1").status.is_final  # type: ignore[union-attr]


async def test_partial_fill_before_timeout_is_reported_as_real(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=2.0, fill_qty=Decimal("0.5"), price=Decimal("99.5"))
    event, reported = await _run(api, _intent(post_only=True))
    assert reported == [
        OrderPartiallyFilled(
            order_link_id="scalp-t-1",
            filled_qty=Decimal("0.5"),
            avg_price=Decimal("99.5"),
            order_id="id-scalp-t-1",
        )
    ]
    assert isinstance(event, OrderFailed)
    assert event.order_id == "id-scalp-t-1"
    assert event.filled_qty == Decimal("0.5")
    assert event.avg_price == Decimal("99.5")


async def test_stream_push_wins_the_race_against_polling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=0.1)
    watch = OrderWatch()
    intent = _intent()

    async def pusher() -> None:
        await trio.sleep(0.2)
        update = api.view(intent.order_link_id)
        assert update is not None
        watch.push(update)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pusher)
        start = trio.current_time()
        event, _ = await _run(api, intent, watch)
    assert isinstance(event, OrderFilled)
    assert api.polls == 0
    assert trio.current_time() - start == pytest.approx(0.2)


async def test_rejected_order_fails_without_polling(autojump_clock: trio.testing.MockClock) -> None:
    api = FakeApi()
    api.default = Script(reject=True)
    event, _ = await _run(api, _intent())
    assert isinstance(event, OrderFailed)
    assert "10001" in event.reason
    assert api.polls == 0


async def test_ambiguous_place_is_resolved_by_reading_never_by_resending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=0.0, ambiguous_place=True)
    event, _ = await _run(api, _intent())
    assert isinstance(event, OrderFilled)
    assert len(api.placed) == 1


async def test_lost_place_ends_failed_with_nothing_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(lost_place=True)
    event, _ = await _run(api, _intent())
    assert isinstance(event, OrderFailed)
    assert event.filled_qty == 0
    assert api.placed == []


async def test_cancel_does_not_wait_behind_a_confirmation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=None)
    send, receive = trio.open_memory_channel[PlaceOrder | CancelOrder](8)
    reported: list[Event] = []

    async def report(event: Event) -> None:
        reported.append(event)

    async def on_fill(intent: OrderIntent, event: Event) -> None:
        pass

    async with trio.open_nursery() as nursery:
        await nursery.start(
            run_execution, api, OrderWatch(), receive, report, on_fill, CONFIG, Metrics()
        )
        start = trio.current_time()
        await send.send(PlaceOrder(intent=_intent()))
        await trio.sleep(1.0)
        await send.send(CancelOrder(symbol="SOLUSDT", order_link_id="scalp-t-1"))
        await trio.testing.wait_all_tasks_blocked()
        assert api.cancelled["scalp-t-1"] - start == pytest.approx(1.0)
        await send.aclose()
    # the confirmation saw the cancel on its next poll: it ended then, not at 10 s
    assert isinstance(reported[-1], OrderFailed)
    assert trio.current_time() - start < 2.0


async def test_a_timed_out_order_whose_cancel_fails_is_not_reported_until_final(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Reporting "failed, nothing filled" while the order still rests would let the
    # engine enter again next to it: the outcome waits until the exchange says final.
    api = FakeApi()
    api.default = Script(fill_after_s=None, cancel_failures=3)
    start = trio.current_time()
    event, _ = await _run(api, _intent(post_only=True))
    assert isinstance(event, OrderFailed)
    assert event.reason.startswith("timeout: Cancelled")
    assert api.view("scalp-t-1").status.is_final  # type: ignore[union-attr]
    # three failed cancel rounds (5 s each, growing pauses) before the fourth succeeded
    assert api.cancelled["scalp-t-1"] - start > 10.0 + 3 * 5.0


async def test_duplicate_order_id_is_confirmed_by_reading_not_reported_rejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.default = Script(fill_after_s=3.0, duplicate_place=True)
    event, _ = await _run(api, _intent())
    assert isinstance(event, OrderFilled)
    assert len(api.placed) == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"protect_attempts": 0}, "protect_attempts must be >= 1, got 0"),
        ({"confirm_timeout_s": 0}, "confirm_timeout_s must be > 0, got 0"),
        ({"poll_interval_s": -0.5}, "poll_interval_s must be > 0, got -0.5"),
    ],
)
def test_an_execution_bound_out_of_range_is_refused(changes: dict[str, float], reason: str) -> None:
    # the confirmation loop's timings: a zero timeout would give up on every order
    with pytest.raises(ValueError, match=f"^{reason}$"):
        ExecutionConfig(**changes)  # type: ignore[arg-type]
