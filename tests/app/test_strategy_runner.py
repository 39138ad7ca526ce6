"""StrategyRunner: the engine's commands reach the right channels, transitions are
logged and journalled, an engine refusal is logged (not raised), and waiters wake up.

Two engines: a scripted fake (the command list for each event is chosen by the test,
so routing is checked exactly) and the real ``Engine`` (so transitions and refusals
are the engine's own). MockClock throughout: the tick timer costs no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.feed import MarketFeed
from scalper.app.journal import Journal, JournalRecord
from scalper.app.metrics import Metrics
from scalper.app.strategy import StrategyRunner
from scalper.core.model import (
    Alert,
    CancelOrder,
    Command,
    EngineState,
    Event,
    Halt,
    Log,
    OrderFilled,
    OrderIntent,
    OrderType,
    PlaceOrder,
    RequestPosition,
    Side,
    Subscribe,
    Tick,
    TimeInForce,
    Transition,
)
from scalper.core.strategy import Engine
from tests.unit._engine_helpers import T0, book, config, momentum_trades, ready, select

D = Decimal


def _intent(link_id: str, *, reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(
        symbol="SOLUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty=D("1"),
        order_link_id=link_id,
        reduce_only=reduce_only,
        time_in_force=TimeInForce.IOC,
    )


class ScriptedEngine:
    """Answers each event with the commands the test scripted for its type."""

    def __init__(self, script: dict[type, list[Command]] | None = None) -> None:
        self.script = script or {}
        self.seen: list[Event] = []
        self.symbol = "SOLUSDT"
        self.state = EngineState.IDLE

    def handle(self, event: Event, now_ms: int) -> list[Command]:
        self.seen.append(event)
        return list(self.script.get(type(event), []))


class Harness:
    """A runner with every output channel exposed, and its log lines."""

    def __init__(self, engine: Any, *, orders: int = 16) -> None:
        self.orders_send, self.orders = trio.open_memory_channel[PlaceOrder | CancelOrder](orders)
        self.subs_send, self.subs = trio.open_memory_channel[str](16)
        self.requests_send, self.requests = trio.open_memory_channel[str](8)
        journal_send, self.journal = trio.open_memory_channel[JournalRecord](100)
        self.metrics = Metrics()
        start = trio.current_time()
        self.runner = StrategyRunner(
            engine,
            clock_ms=lambda: T0 + int((trio.current_time() - start) * 1000),
            orders=self.orders_send,
            subscriptions=self.subs_send,
            position_requests=self.requests_send,
            journal=Journal(journal_send, clock_ms=lambda: T0),
            metrics=self.metrics,
        )

    @staticmethod
    def drain(channel: trio.MemoryReceiveChannel[Any]) -> list[Any]:
        out = []
        while True:
            try:
                out.append(channel.receive_nowait())
            except trio.WouldBlock:
                return out


@pytest.fixture
def lines() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    captured: list[tuple[str, str, dict[str, Any]]] = []

    def sink(message: Any) -> None:
        r = message.record
        captured.append((r["level"].name, r["message"], dict(r["extra"])))

    handler = logger.add(sink, level="DEBUG")
    yield captured
    logger.remove(handler)


async def test_each_command_goes_to_its_own_channel() -> None:
    entry, close = _intent("scalp-t1-e1"), _intent("scalp-t1-x2", reduce_only=True)
    cancel = CancelOrder(symbol="SOLUSDT", order_link_id="scalp-t1-e1")
    engine = ScriptedEngine(
        {
            Tick: [
                PlaceOrder(intent=entry),
                cancel,
                Subscribe(symbol="XRPUSDT"),
                RequestPosition(symbol="SOLUSDT"),
                PlaceOrder(intent=close),
            ]
        }
    )
    h = Harness(engine)
    await h.runner.feed(Tick())
    assert h.drain(h.orders) == [PlaceOrder(intent=entry), cancel, PlaceOrder(intent=close)]
    assert h.drain(h.subs) == ["XRPUSDT"]
    assert h.drain(h.requests) == ["SOLUSDT"]
    assert (h.metrics.entries, h.metrics.exits) == (1, 1)
    orders = [r for r in h.drain(h.journal) if r.kind == "order"]
    assert [(r.order_link_id, r.data["reduce_only"]) for r in orders] == [
        ("scalp-t1-e1", False),
        ("scalp-t1-x2", True),
    ]


async def test_position_requests_are_never_dropped_and_a_full_channel_is_logged(
    lines: list[tuple[str, str, dict[str, Any]]],
) -> None:
    # Requests for two symbols during a switch must both arrive (the reconcile task
    # coalesces per symbol); a full channel is a bug: logged, then the send waits.
    engine = ScriptedEngine(
        {Tick: [RequestPosition(symbol="SOLUSDT"), RequestPosition(symbol="XRPUSDT")] * 5}
    )
    h = Harness(engine)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.runner.feed, Tick())
        await trio.testing.wait_all_tasks_blocked()
        assert any("position requests channel full" in m for _, m, _ in lines)
        received = h.drain(h.requests)
        await trio.testing.wait_all_tasks_blocked()
        received += h.drain(h.requests)
    assert received == ["SOLUSDT", "XRPUSDT"] * 5


async def test_transitions_logs_and_alerts_are_logged_with_symbol_and_journalled(
    lines: list[tuple[str, str, dict[str, Any]]],
) -> None:
    engine = ScriptedEngine(
        {
            Tick: [
                Transition(
                    before=EngineState.IDLE, after=EngineState.ORDER_PENDING, cause="entry signal"
                ),
                Log(level="warning", message="something odd"),
                Alert(message="daily loss limit"),
            ]
        }
    )
    h = Harness(engine)
    await h.runner.feed(Tick())
    ours = [(lv, m) for lv, m, extra in lines if extra.get("symbol") == "SOLUSDT"]
    assert ours == [
        ("INFO", "state Idle -> OrderPending: entry signal"),
        ("WARNING", "something odd"),
        ("WARNING", "ALERT: daily loss limit"),
    ]
    records = h.drain(h.journal)
    assert [(r.kind, r.symbol) for r in records] == [
        ("transition", "SOLUSDT"),
        ("alert", "SOLUSDT"),
    ]
    assert records[0].data == {
        "before": EngineState.IDLE,
        "after": EngineState.ORDER_PENDING,
        "cause": "entry signal",
    }


async def test_real_engine_entry_is_journalled_and_sent_in_order(
    lines: list[tuple[str, str, dict[str, Any]]],
) -> None:
    h = Harness(ready(config()))
    await h.runner.feed(book())
    await h.runner.feed(momentum_trades(Side.BUY))
    placed = h.drain(h.orders)
    assert len(placed) == 1 and isinstance(placed[0], PlaceOrder)
    link_id = placed[0].intent.order_link_id
    kinds = [(r.kind, r.order_link_id) for r in h.drain(h.journal)]
    # in the engine's order: the order (journalled before execution sees it), the transition
    assert kinds == [("order", link_id), ("transition", "")]
    assert any(m.startswith("state Idle -> OrderPending: entry signal") for _, m, _ in lines)


async def test_engine_refusal_is_logged_not_raised_and_changes_nothing(
    lines: list[tuple[str, str, dict[str, Any]]],
) -> None:
    engine = ready(config())
    h = Harness(engine)
    bogus = OrderFilled(order_link_id="scalp-t1-e99", filled_qty=D(1), avg_price=D(100))
    await h.runner.feed(bogus)  # an order this engine never issued: a caller bug
    assert engine.state is EngineState.IDLE
    assert engine.position is None
    errors = [m for lv, m, _ in lines if lv == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("engine refused OrderFilled")
    assert h.drain(h.orders) == [] and h.drain(h.journal) == []
    # and the runner still works afterwards
    await h.runner.feed(book())
    await h.runner.feed(momentum_trades(Side.SELL))
    assert engine.state is EngineState.ORDER_PENDING


async def test_wait_until_wakes_on_the_event_that_makes_it_true() -> None:
    engine = Engine(config())
    h = Harness(engine)
    woke_in: list[EngineState] = []

    async def waiter() -> None:
        await h.runner.wait_until(lambda e: e.symbol == "SOLUSDT")
        woke_in.append(engine.state)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        await h.runner.feed(Tick())
        await trio.testing.wait_all_tasks_blocked()
        assert woke_in == []  # a change that does not satisfy it: still waiting
        await h.runner.feed(select("SOLUSDT"))
    assert len(woke_in) == 1
    # already true: returns at once
    with trio.fail_after(1):
        await h.runner.wait_until(lambda e: e.symbol == "SOLUSDT")


async def test_hold_keeps_events_waiting_until_released() -> None:
    engine = ScriptedEngine()
    h = Harness(engine)
    async with trio.open_nursery() as nursery:
        async with h.runner.hold():
            nursery.start_soon(h.runner.feed, Halt(reason="x"))
            await trio.testing.wait_all_tasks_blocked()
            assert engine.seen == []
        await trio.testing.wait_all_tasks_blocked()
    assert engine.seen == [Halt(reason="x")]


async def test_run_feeds_market_control_and_ticks(autojump_clock: trio.testing.MockClock) -> None:
    engine = ScriptedEngine()
    h = Harness(engine)
    feed = MarketFeed(h.metrics)
    control_send, control = trio.open_memory_channel[Event](4)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda **kw: h.runner.run(feed.receiver, control, tick_interval_s=1.0, **kw)
        )
        update = book()
        feed.book_update(update, trio.current_time())
        await control_send.send(Halt(reason="stop"))
        await trio.sleep(3.5)
        nursery.cancel_scope.cancel()
    assert update in engine.seen and Halt(reason="stop") in engine.seen
    assert sum(isinstance(e, Tick) for e in engine.seen) == 3
    assert h.metrics.tick_to_decision.count == 1
