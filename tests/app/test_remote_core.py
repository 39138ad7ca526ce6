"""The control core under MockClock: commands, snapshots, journaled pause, notices.

A real ``Engine`` behind a real ``StrategyRunner`` with in-memory channels; time is
trio's MockClock, so the 30 s stream-down rule and the exit-fee wait cost no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.journal import Journal, JournalRecord
from scalper.app.metrics import Metrics
from scalper.app.remote import (
    STREAM_DOWN_S,
    Control,
    Notice,
    NoticeQueue,
    Notifier,
    day_net_pnl,
    run_watch,
)
from scalper.app.shutdown import ShutdownRequest
from scalper.app.strategy import StrategyRunner
from scalper.app.wiring import PnlTracker
from scalper.core.model import CancelOrder, Halt, OrderFilled, PlaceOrder, ProtectPosition, Side
from scalper.core.pnl import Fill, Ledger
from scalper.core.strategy import Engine
from tests.unit._engine_helpers import T0, book, config, momentum_trades, ready, trades

D = Decimal


def _next_order(orders: Any) -> Any:
    """The next order command that is not a ProtectPosition (the engine protects every
    fill on the exchange: that command rides the same channel, ahead of the close)."""
    while True:
        command = orders.receive_nowait()  # WouldBlock when none: the test fails
        if not isinstance(command, ProtectPosition):
            return command


class Harness:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or ready()
        self.orders_send, self.orders = trio.open_memory_channel[PlaceOrder | CancelOrder](16)
        subs_send, self.subs = trio.open_memory_channel[str](16)
        requests_send, self.requests = trio.open_memory_channel[str](16)
        journal_send, self.journal = trio.open_memory_channel[JournalRecord](100)
        self.metrics = Metrics()
        start = trio.current_time()
        self.clock_ms = lambda: T0 + int((trio.current_time() - start) * 1000)
        journal = Journal(journal_send, clock_ms=self.clock_ms)
        self.runner = StrategyRunner(
            self.engine,
            clock_ms=self.clock_ms,
            orders=self.orders_send,
            subscriptions=subs_send,
            position_requests=requests_send,
            journal=journal,
            metrics=self.metrics,
        )
        self.shutdown = ShutdownRequest()
        self.pnl = Ledger()  # the session's fills: the test adds them
        self.control = Control(
            runner=self.runner,
            shutdown=self.shutdown,
            journal=journal,
            metrics=self.metrics,
            pnl=self.pnl,
            clock_ms=self.clock_ms,
            mode="sim",
            session_tag="t1",
        )
        self.notices = self.control.notifier.subscribe(50)

    async def open_position(self, side: Side) -> PlaceOrder:
        """A momentum signal on a fresh book, and its market entry filled (10 @ 100)."""
        now = self.clock_ms()
        await self.runner.feed(book(ts=now))
        await self.runner.feed(momentum_trades(side, ts=now))
        entry = self.orders.receive_nowait()
        assert isinstance(entry, PlaceOrder)
        await self.runner.feed(
            OrderFilled(
                order_link_id=entry.intent.order_link_id, filled_qty=D("10.0"), avg_price=D(100)
            )
        )
        return entry

    def records(self, kind: str) -> list[JournalRecord]:
        out = []
        while True:
            try:
                record = self.journal.receive_nowait()
            except trio.WouldBlock:
                return [r for r in out if r.kind == kind]
            out.append(record)

    def queued(self) -> list[Notice]:
        items = list(self.notices._items)
        self.notices._items.clear()
        return items


@pytest.fixture
def lines() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    captured: list[tuple[str, str, dict[str, Any]]] = []

    def sink(message: Any) -> None:
        r = message.record
        captured.append((r["level"].name, r["message"], dict(r["extra"])))

    handler = logger.add(sink, level="DEBUG")
    yield captured
    logger.remove(handler)


async def test_pause_resume_go_through_the_engine_journaled_and_logged(
    autojump_clock: trio.testing.MockClock, lines: list[tuple[str, str, dict[str, Any]]]
) -> None:
    h = Harness()
    reply = await h.control.execute("pause", "telegram:42")
    assert reply.ok and reply.text.startswith("paused")
    assert h.engine.paused_by == "telegram:42"
    reply = await h.control.execute("pause", "tty")  # already paused: nothing journaled
    reply = await h.control.execute("resume", "http")
    assert reply.ok and not h.engine.paused
    states = [(r.data["paused"], r.data["origin"]) for r in h.records("control_state")]
    assert states == [(True, "telegram:42"), (False, "http")]
    commands = [(m, extra.get("origin")) for _, m, extra in lines if m.startswith("command ")]
    assert commands == [
        ("command pause from telegram:42", "telegram:42"),
        ("command pause from tty", "tty"),
        ("command resume from http", "http"),
    ]
    # the engine's own log line names the origin too
    assert any(m == "paused by telegram:42: no new entries" for _, m, _ in lines)


async def test_entries_are_held_while_paused(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    await h.control.execute("pause", "tty")
    now = h.clock_ms()
    await h.runner.feed(book(ts=now))
    await h.runner.feed(momentum_trades(Side.BUY, ts=now))
    with pytest.raises(trio.WouldBlock):
        h.orders.receive_nowait()
    await h.control.execute("resume", "tty")
    await h.runner.feed(momentum_trades(Side.BUY, ts=now))
    placed = h.orders.receive_nowait()
    assert isinstance(placed, PlaceOrder) and not placed.intent.reduce_only


async def test_flatten_closes_a_position_with_reduce_only_and_stop_requests_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness()
    await h.open_position(Side.BUY)
    now = h.clock_ms()
    await h.runner.feed(trades([100.0] * 10, ts=now))
    status = h.control.status()
    assert status["position"]["side"] == "Buy" and status["position"]["size"] == "10.0"
    assert status["position"]["stop"] == pytest.approx(99.5)
    assert status["position"]["take_profit"] == pytest.approx(101.0)
    reply = await h.control.execute("flatten", "http")
    assert reply.ok and reply.text.startswith("flattening")
    close = _next_order(h.orders)
    assert isinstance(close, PlaceOrder) and close.intent.reduce_only
    assert close.intent.side is Side.SELL and close.intent.qty == D("10.0")
    assert h.control.status()["state"] == "ClosingPosition"
    assert not h.shutdown.requested.is_set()
    reply = await h.control.execute("stop", "telegram:7")
    assert reply.ok and h.shutdown.requested.is_set()
    assert h.shutdown.reason == "stop by telegram:7"


async def test_unknown_command_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    reply = await h.control.execute("dance", "http")
    assert not reply.ok and "unknown" in reply.text


async def test_status_snapshot_has_the_book_and_pnl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness()
    await trio.sleep(1.0)
    await h.runner.feed(book(bid=99.0, ask=101.0, ts=T0))
    status = h.control.status()
    assert (status["bid"], status["ask"]) == (99.0, 101.0)
    assert status["spread_bps"] == pytest.approx(200.0)
    assert status["book_age_ms"] == 1000
    assert status["symbol"] == "SOLUSDT" and status["state"] == "Idle"
    assert status["day_net_pnl"] == "0.0000" and status["daily_loss_headroom"] == "100.0000"
    assert h.control.status()["halted"] is False
    await h.runner.feed(Halt(reason="operator"))
    status = h.control.status()
    assert status["halted"] is True and status["halt_reason"] == "operator"
    pnl = await h.control.execute("pnl", "tty")
    assert pnl.ok and pnl.text.startswith("day 0.0000")


def test_day_net_pnl_is_the_risk_gates_figure() -> None:
    engine = ready()
    engine.risk.record_realised_pnl(D("-12.5"), T0)
    assert day_net_pnl(engine, T0) == D("-12.5")


# ---------------------------------------------------------------- notices


def test_notice_queue_drops_the_oldest_and_counts() -> None:
    queue = NoticeQueue(3)
    for i in range(5):
        queue.put(Notice(kind="alert", text=str(i), ts_ms=i))
    assert [n.text for n in queue._items] == ["2", "3", "4"] and queue.dropped == 2
    notifier = Notifier(lambda: 0)
    a, b = notifier.subscribe(1), notifier.subscribe(10)
    notifier.publish("alert", "x")
    notifier.publish("alert", "y")
    assert notifier.dropped == 1 and len(a) == 1 and len(b) == 2


async def test_get_all_coalesces_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    queue = NoticeQueue(10)
    got: list[list[str]] = []

    async def consumer() -> None:
        got.append([n.text for n in await queue.get_all()])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(3):
            queue.put(Notice(kind="alert", text=str(i), ts_ms=i))
    assert got == [["0", "1", "2"]]


async def test_alert_log_lines_become_notices(autojump_clock: trio.testing.MockClock) -> None:
    notifier = Notifier(lambda: 5)
    queue = notifier.subscribe()
    notifier.capture_alerts()
    try:
        logger.warning("ALERT: position closed outside the bot")
        logger.warning("ALERT: halted: daily loss")  # the halt notice covers it
        logger.warning("not an alert")
    finally:
        notifier.release_alerts()
    logger.warning("ALERT: after release")
    assert [(n.kind, n.text) for n in queue._items] == [
        ("alert", "position closed outside the bot")
    ]


async def test_watcher_reports_entry_exit_halt_stream_and_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness()
    h.metrics.book_updates = 1
    async with trio.open_nursery() as nursery:
        await nursery.start(run_watch, h.control)
        await h.open_position(Side.BUY)
        await trio.testing.wait_all_tasks_blocked()
        assert [n.text for n in h.queued()] == [
            "entry Buy 10.0 SOLUSDT @ 100 (stop 99.5, take-profit 101)"
        ]
        # the close fills; its fee-bearing fill is booked a moment later
        await h.runner.feed(Halt(reason="test halt"))
        close = _next_order(h.orders)
        assert isinstance(close, PlaceOrder) and close.intent.reduce_only
        await h.runner.feed(
            OrderFilled(
                order_link_id=close.intent.order_link_id, filled_qty=D("10.0"), avg_price=D(99)
            )
        )
        await trio.testing.wait_all_tasks_blocked()
        for side, price in (("Buy", 100), ("Sell", 99)):  # 10 @ 100 -> 99, fees 0.12
            h.pnl.add(
                Fill(
                    ts_ms=0,
                    symbol="SOLUSDT",
                    side=side,
                    qty=D("10.0"),
                    price=D(price),
                    fee=D("0.06"),
                )
            )
        await trio.sleep(1.5)
        kinds = [(n.kind, n.text) for n in h.queued()]
        assert ("halt", "halted: test halt") in kinds
        assert ("exit", "exit SOLUSDT Buy 10.0 100 -> 99: net pnl -10.1200") in kinds
        # a silent market: reported once after STREAM_DOWN_S, and when it is back
        await trio.sleep(STREAM_DOWN_S + 2)
        assert [n.kind for n in h.queued()] == ["stream"]
        await trio.sleep(10)
        assert h.queued() == []
        h.metrics.book_updates += 1
        await trio.sleep(1.5)
        assert [n.text.startswith("market stream back") for n in h.queued()] == [True]
        # a day's loss within 20 % of the 100 USD limit: once (the close lost 10 already)
        h.engine.risk.record_realised_pnl(D("-65"), h.clock_ms())
        h.metrics.book_updates += 1
        await trio.sleep(1.5)
        assert h.queued() == []
        h.engine.risk.record_realised_pnl(D("-6"), h.clock_ms())
        h.metrics.book_updates += 1
        await trio.sleep(1.5)
        h.metrics.book_updates += 1
        await trio.sleep(1.5)
        loss = [n for n in h.queued() if n.kind == "loss"]
        assert [n.text for n in loss] == ["daily loss 81.00 is within 20 % of the limit 100"]
        assert len(h.control.equity) >= 2
        nursery.cancel_scope.cancel()


async def test_exit_notice_goes_out_without_fees_after_the_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness(ready(config()))
    async with trio.open_nursery() as nursery:
        await nursery.start(run_watch, h.control)
        await h.open_position(Side.SELL)
        await h.control.execute("flatten", "tty")
        close = _next_order(h.orders)
        assert isinstance(close, PlaceOrder)
        await h.runner.feed(
            OrderFilled(
                order_link_id=close.intent.order_link_id, filled_qty=D("10.0"), avg_price=D(100)
            )
        )
        await trio.sleep(1.5)
        assert [n.kind for n in h.queued()] == ["entry"]  # still waiting for the fill's fee
        await trio.sleep(3)
        assert [n.text for n in h.queued()] == ["exit SOLUSDT: net pnl 0.0000"]
        nursery.cancel_scope.cancel()


async def test_pnl_counts_wins_after_fees_from_the_runs_tracker() -> None:
    # the front ends, the panel and the report count a win the same way: net of fees
    harness = Harness()
    tracker = PnlTracker(harness.metrics)
    control = attrs.evolve(harness.control, pnl=tracker.ledger)
    fee = D("0.6")  # a one-tick win that its two fees turn into a loss
    for n, (side, price) in enumerate([("Buy", 100), ("Sell", 101), ("Buy", 100), ("Sell", 103)]):
        tracker.add(Fill(ts_ms=n, symbol="SOLUSDT", side=side, qty=D(1), price=D(price), fee=fee))
    view = control.pnl_view()
    assert (view["round_trips"], view["wins"], view["session_net_pnl"]) == (2, 1, "1.6000")
    assert [trip.exit for trip in tracker.ledger.trips] == [D(101), D(103)]
