"""sd_notify: datagrams on a socket of the test's own, the watchdog paced by MockClock,
and a hung strategy loop that stops the pings (so systemd would restart the bot)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.journal import Journal, JournalRecord
from scalper.app.metrics import Metrics
from scalper.app.sdnotify import Notifier, socket_address
from scalper.app.strategy import StrategyRunner
from scalper.core.model import CancelOrder, PlaceOrder
from scalper.core.strategy import Engine
from tests.unit._engine_helpers import T0, config


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield path, sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_ready_status_and_stopping_reach_the_socket(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_interval_s is None
    notifier.ready("Idle SOLUSDT flat")
    notifier.status("Idle SOLUSDT flat")  # unchanged: not sent again
    notifier.status("PositionOpen SOLUSDT Buy 5 @ 100")
    notifier.stopping("stopping: signal SIGTERM")
    notifier.stopping()  # said once only
    notifier.watchdog()  # no WATCHDOG_USEC: nothing
    assert received(sock) == [
        "READY=1\nSTATUS=Idle SOLUSDT flat",
        "STATUS=PositionOpen SOLUSDT Buy 5 @ 100",
        "STOPPING=1\nSTATUS=stopping: signal SIGTERM",
    ]
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"scalper-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.setblocking(False)
    try:
        assert socket_address("@" + name) == b"\0" + name.encode()
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("Idle")
        assert received(sock) == ["READY=1\nSTATUS=Idle"]
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()
    assert notifier.sent == 0


def test_a_watchdog_meant_for_another_process_is_ignored(
    receiver: tuple[str, socket.socket],
) -> None:
    path, _ = receiver
    other = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_s is None
    ours = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert ours.watchdog_interval_s == 0.5


def test_a_send_that_fails_is_logged_once_and_never_raised(tmp_path: Path) -> None:
    warnings: list[str] = []
    handler = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
        notifier.ready("Idle")
        notifier.stopping()
    finally:
        logger.remove(handler)
    assert notifier.sent == 0
    assert len([w for w in warnings if w.startswith("sd_notify: cannot send")]) == 1


async def test_watchdog_pings_at_half_the_timeout(
    autojump_clock: trio.testing.MockClock, receiver: tuple[str, socket.socket]
) -> None:
    path, sock = receiver
    notifier = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}, clock=trio.current_time
    )
    assert notifier.watchdog_interval_s == 2.0
    # the strategy loop calls it every 0.25 s for 10 s: a ping at 0, 2, 4, 6, 8 s
    for _ in range(40):
        notifier.watchdog()
        await trio.sleep(0.25)
    assert received(sock) == ["WATCHDOG=1"] * 5


def _runner(notifier: Notifier) -> StrategyRunner:
    orders_send, _ = trio.open_memory_channel[PlaceOrder | CancelOrder](16)
    subs_send, _ = trio.open_memory_channel[str](16)
    requests_send, _ = trio.open_memory_channel[str](16)
    journal_send, _ = trio.open_memory_channel[JournalRecord](1000)
    start = trio.current_time()
    return StrategyRunner(
        Engine(config()),
        clock_ms=lambda: T0 + int((trio.current_time() - start) * 1000),
        orders=orders_send,
        subscriptions=subs_send,
        position_requests=requests_send,
        journal=Journal(journal_send, clock_ms=lambda: T0),
        metrics=Metrics(),
        heartbeat=notifier.watchdog,
    )


async def test_the_strategy_loop_pings_and_a_hung_loop_stops_the_pings(
    autojump_clock: trio.testing.MockClock, receiver: tuple[str, socket.socket]
) -> None:
    path, sock = receiver
    notifier = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=trio.current_time
    )
    runner = _runner(notifier)
    market_send, market = trio.open_memory_channel[tuple[float, object]](4)
    control_send, control = trio.open_memory_channel[object](4)
    async with market_send, control_send, trio.open_nursery() as nursery:
        await nursery.start(runner.run, market, control)  # type: ignore[arg-type]
        await trio.sleep(5.1)
        alive = received(sock)
        # pinged once a second while the loop turns (ticks every 0.25 s)
        assert alive == ["WATCHDOG=1"] * 5
        async with runner.hold():  # the loop hangs: the engine cannot be fed
            await trio.sleep(10)
            assert received(sock) == []
        await trio.sleep(0.5)
        assert received(sock) == ["WATCHDOG=1"]  # back to life: pinged at the next turn
        nursery.cancel_scope.cancel()
