"""A market message that finds the strategy runner idle is handled in the sender's task
(the socket reader), and that shortcut keeps every rule of the usual hop: the engine
sees messages in their order, a control event on its way goes first, the commands leave
in the order the engine made them (a backlog the next lock holder carries out first),
and a lagging strategy, or a burst of frames from one socket read, still comes down to
the latest book with every trade.

MockClock throughout; every wait is ``wait_all_tasks_blocked`` (no real time, no loop
without a bound).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from scalper.app.feed import MarketFeed
from scalper.core.model import (
    BookTop,
    BookUpdate,
    CancelOrder,
    Command,
    Event,
    Halt,
    Side,
    Tick,
    Trade,
    TradeTicks,
)
from tests.app.test_strategy_runner import Harness, ScriptedEngine


class NumberingEngine(ScriptedEngine):
    """Answers the event types in ``busy`` with two cancels named after the event's
    place in the order handled, so the order the commands leave in can be checked.
    Ticks are not recorded (the timer's turn is the clock's, not the test's)."""

    def __init__(self, busy: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.busy = busy

    def handle(self, event: Event, now_ms: int) -> list[Command]:
        if type(event) is Tick:
            return []
        self.seen.append(event)
        if not isinstance(event, self.busy):
            return []
        n = len(self.seen)
        return [
            CancelOrder(symbol="SOLUSDT", order_link_id=f"{n}a"),
            CancelOrder(symbol="SOLUSDT", order_link_id=f"{n}b"),
        ]


def _book(i: int) -> BookUpdate:
    return BookUpdate(
        top=BookTop(symbol="SOLUSDT", bid=100.0 + i, bid_size=1, ask=101.0 + i, ask_size=1, ts_ms=i)
    )


def _trades(*ids: int) -> TradeTicks:
    trades = tuple(
        Trade(symbol="SOLUSDT", price=100.0, qty=1.0, side=Side.BUY, ts_ms=i) for i in ids
    )
    return TradeTicks(symbol="SOLUSDT", trades=trades)


class Running:
    """A runner on a feed and a control channel, in the test's nursery."""

    def __init__(self, engine: ScriptedEngine, feed: MarketFeed, h: Harness) -> None:
        self.engine, self.feed, self.h = engine, feed, h
        self.control_send, control = trio.open_memory_channel[Event](4)
        self.control = control

    def orders(self) -> list[str]:
        return [c.order_link_id for c in self.h.drain(self.h.orders)]


@asynccontextmanager
async def running(
    engine: ScriptedEngine, orders: int = 16, tick_interval_s: float = 1e6, **feed_kw: int
) -> AsyncIterator[Running]:
    h = Harness(engine, orders=orders)
    r = Running(engine, MarketFeed(h.metrics, **feed_kw), h)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda **kw: h.runner.run(
                r.feed.receiver, r.control, tick_interval_s=tick_interval_s, **kw
            )
        )
        await trio.testing.wait_all_tasks_blocked()
        yield r
        nursery.cancel_scope.cancel()


async def test_an_idle_runner_decides_in_the_senders_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine()) as r:
        first, trades = _book(1), _trades(2, 3)
        assert r.feed.book_update(first, trio.current_time())
        assert r.engine.seen == [first]  # before any checkpoint: no hop
        assert r.feed.trade_ticks(trades, trio.current_time())
        assert r.engine.seen == [first, trades]  # the message itself, not a copy
        assert not r.feed.pending_book and r.feed.pending_trades == 0
        assert r.h.metrics.tick_to_decision.count == 2
        # the plain ``trades`` offer takes the same path
        assert r.feed.trades("SOLUSDT", (_trades(4).trades[0],), trio.current_time())
        assert r.engine.seen[-1] == _trades(4)


async def test_the_timer_counts_in_the_latencies_recorded_in_the_senders_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine(), tick_interval_s=1.0) as r:
        latency = r.h.metrics.tick_to_decision
        for i in range(3):
            r.feed.book_update(_book(i), trio.current_time())
        assert len(r.engine.seen) == 3 and latency.unfolded == 3  # kept, not counted yet
        await trio.sleep(1.5)  # one timer turn
        assert latency.unfolded == 0  # counted in: the kept samples stay bounded
        assert latency.count == 3


async def test_a_control_event_on_its_way_is_handled_before_a_later_market_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine()) as r:
        r.control_send.send_nowait(Halt(reason="x"))  # handed to the control loop
        update = _book(1)
        r.feed.book_update(update, trio.current_time())
        assert r.engine.seen == []  # not taken over the halt: it waits in the feed
        assert r.feed.pending_book
        await trio.testing.wait_all_tasks_blocked()
        # both handled (which of the two tasks ran first is trio's choice, as before)
        assert len(r.engine.seen) == 2 and Halt(reason="x") in r.engine.seen
        assert update in r.engine.seen
        # settled again: the shortcut is back
        later = _book(2)
        r.feed.book_update(later, trio.current_time())
        assert r.engine.seen[-1] == later


async def test_a_control_event_on_its_way_goes_first_even_beside_another_waiting_receiver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # what is asked is whether the runner's own control loop sleeps in its receive, not
    # whether some receiver of the channel waits: here a second one does, while the
    # event sent is already on its way to the runner's loop (the first to wait)
    async with running(NumberingEngine()) as r, trio.open_nursery() as nursery:
        other = r.control.clone()
        nursery.start_soon(other.receive)
        await trio.testing.wait_all_tasks_blocked()
        r.control_send.send_nowait(Halt(reason="x"))  # to the runner's loop, waiting first
        update = _book(1)
        r.feed.book_update(update, trio.current_time())
        assert r.engine.seen == []  # not taken over the halt
        await trio.testing.wait_all_tasks_blocked()
        assert Halt(reason="x") in r.engine.seen and update in r.engine.seen
        nursery.cancel_scope.cancel()


async def test_commands_of_a_message_taken_at_once_leave_first_and_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = NumberingEngine(busy=(BookUpdate, Halt))
    async with running(engine) as r:
        r.feed.book_update(_book(1), trio.current_time())  # handled now: 1a, 1b wait
        assert engine.seen == [_book(1)] and r.orders() == []
        r.feed.book_update(_book(2), trio.current_time())  # a backlog waits: queued
        assert engine.seen == [_book(1)] and r.feed.pending_book
        await r.control_send.send(Halt(reason="x"))
        await trio.testing.wait_all_tasks_blocked()
        # whatever task got the engine next, it carried out the backlog first
        assert len(engine.seen) == 3
        expected = [f"{n}{x}" for n in (1, 2, 3) for x in "ab"]
        assert r.orders() == expected
        assert r.h.metrics.tick_to_decision.count == 2  # the two books (not the halt)


async def test_whoever_takes_the_lock_carries_out_the_backlog_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = NumberingEngine(busy=(BookUpdate,))
    async with running(engine) as r:
        r.feed.book_update(_book(1), trio.current_time())
        async with r.h.runner.hold():
            assert r.orders() == ["1a", "1b"]  # flushed before the holder went on
            r.feed.book_update(_book(2), trio.current_time())
            assert engine.seen == [_book(1)]  # held: it waits in the feed
        await trio.testing.wait_all_tasks_blocked()
        assert engine.seen == [_book(1), _book(2)]
        assert r.orders() == ["2a", "2b"]


async def test_a_caller_cancelled_while_carrying_out_the_backlog_loses_none_of_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = NumberingEngine(busy=(BookUpdate,))
    async with running(engine, orders=1) as r:
        r.h.orders_send.send_nowait(CancelOrder(symbol="SOLUSDT", order_link_id="pre"))
        r.feed.book_update(_book(1), trio.current_time())  # handled now: 1a, 1b wait
        with trio.move_on_after(1) as gave_up:  # a caller with a deadline, on a full channel
            await r.h.runner.feed(Halt(reason="x"))
        assert gave_up.cancelled_caught and engine.seen == [_book(1)]
        sent: list[str] = []
        for _ in range(5):  # the flush task carries out what the caller could not
            sent += r.orders()
            await trio.testing.wait_all_tasks_blocked()
        assert sent == ["pre", "1a", "1b"]


async def test_a_lagging_runner_still_gets_the_latest_book_and_every_trade(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine()) as r:
        async with r.h.runner.hold():
            now = trio.current_time()
            r.feed.book_update(_book(1), now)
            r.feed.trade_ticks(_trades(2), now)
            r.feed.book_update(_book(3), now)
            r.feed.trade_ticks(_trades(4, 5), now)
            r.feed.book_update(_book(6), now)
            assert r.engine.seen == []
        await trio.testing.wait_all_tasks_blocked()
        assert r.engine.seen == [_trades(2, 4, 5), _book(6)]
        assert r.feed.coalesced == 2  # books 1 and 3: superseded, not lost trades


async def test_a_trade_message_over_the_backlog_bound_is_trimmed_as_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine(), max_pending_trades=2) as r:
        assert not r.feed.trade_ticks(_trades(1, 2, 3), trio.current_time())
        assert r.h.metrics.market_dropped == 1
        await trio.testing.wait_all_tasks_blocked()
        assert r.engine.seen == [_trades(2, 3)]


async def test_a_burst_of_one_read_coalesces_even_for_an_idle_runner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(NumberingEngine()) as r:
        now = trio.current_time()
        r.feed.book_update(_book(1), now, more=True)  # more of the read follows
        r.feed.trade_ticks(_trades(2), now, more=True)
        r.feed.book_update(_book(3), now, more=True)
        r.feed.book_update(_book(4), now)  # the read's last: the strategy is awake now
        assert r.engine.seen == []
        await trio.testing.wait_all_tasks_blocked()
        assert r.engine.seen == [_trades(2), _book(4)]  # latest book wins, trades kept
        assert r.feed.coalesced == 2
