"""Issue 9, hole 4: whatever ends the trading tree runs the sweep.

``run_guarded`` is the bot's root: the journal writer beside the trading body. Before
issue 9 a failing writer cancelled the body from the root nursery, the body saw
``Cancelled`` (not an ``Exception``) and the sweep never ran: the bot exited with our
orders working. These tests drive the real structure under MockClock with a writer
that fails like a full disk, a task that raises, and a cancellation from outside.
The sweep used here awaits (as the real one does, over the network), so it only
completes if it is shielded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from scalper.app.bot import run_guarded
from scalper.app.journal import Journal, JournalFailed, JournalRecord
from scalper.app.main import _leaves

from .fakes import FakeApi


class Orders:
    """Our working orders on a fake exchange, and a sweep that cancels them (slowly)."""

    def __init__(self) -> None:
        self.working = {"scalp-t-e1", "scalp-t-x2"}
        self.sweeps: list[float] = []
        self.completed = 0

    async def sweep(self) -> bool:
        self.sweeps.append(trio.current_time())
        for link_id in sorted(self.working):
            await trio.sleep(0.1)  # a network round trip: needs the shield
            self.working.discard(link_id)
        self.completed += 1
        return True


def failing_writer(fail_on: str) -> Callable[..., Awaitable[None]]:
    async def writer(
        path: str,
        receive: trio.MemoryReceiveChannel[JournalRecord],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        async with receive:
            async for record in receive:
                if record.kind == fail_on:
                    raise OSError(28, "No space left on device")

    return writer


async def _trading_body(journal: Journal, *, fail_after: float | None = None) -> bool:
    """A small trading tree: a task journaling every second, one that may raise."""

    async def heartbeat() -> None:
        n = 0
        while True:
            await trio.sleep(1.0)
            n += 1
            await journal.record("transition" if n != 3 else "order", n=n)

    async def crashing() -> None:
        assert fail_after is not None
        await trio.sleep(fail_after)
        raise RuntimeError("a task failed")

    async with trio.open_nursery() as trading:
        trading.start_soon(heartbeat)
        if fail_after is not None:
            trading.start_soon(crashing)
    return True


async def test_a_journal_writer_that_raises_runs_the_sweep_and_names_the_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    orders = Orders()
    start = trio.current_time()
    with pytest.raises(BaseExceptionGroup) as caught:
        await run_guarded(
            ":memory:",
            lambda: 0,
            _trading_body,
            sweep=orders.sweep,
            writer=failing_writer("order"),  # the third record hits a full disk
        )
    assert orders.completed == 1, "the sweep ran to its end"
    assert orders.working == set()
    assert orders.sweeps[0] - start == pytest.approx(3.0)
    leaves = _leaves(caught.value)
    assert any(
        isinstance(e, JournalFailed) and "OSError" in str(e) and "No space left" in str(e)
        for e in leaves
    ), leaves


async def test_an_exception_in_any_trading_task_runs_the_sweep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    orders = Orders()

    async def body(journal: Journal) -> bool:
        return await _trading_body(journal, fail_after=2.5)

    with pytest.raises(BaseExceptionGroup) as caught:
        await run_guarded(
            ":memory:", lambda: 0, body, sweep=orders.sweep, writer=failing_writer("-")
        )
    assert orders.completed == 1 and orders.working == set()
    assert any(isinstance(e, RuntimeError) for e in _leaves(caught.value))


async def test_a_cancellation_from_outside_runs_the_sweep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # a second Ctrl+C cancels the whole program from above the bot
    orders = Orders()
    with trio.move_on_after(4.5) as outside:
        await run_guarded(
            ":memory:", lambda: 0, _trading_body, sweep=orders.sweep, writer=failing_writer("-")
        )
    assert outside.cancelled_caught
    assert orders.completed == 1 and orders.working == set()


async def test_the_sweep_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    api = FakeApi()

    async def hanging_sweep() -> bool:
        await api.open_orders(None)
        await trio.sleep_forever()  # an exchange that never answers
        return False  # pragma: no cover

    start = trio.current_time()
    with trio.move_on_after(1.0):
        await run_guarded(
            ":memory:", lambda: 0, _trading_body, sweep=hanging_sweep, writer=failing_writer("-")
        )
    from scalper.app.bot import FINAL_SWEEP_TIMEOUT_S, JOURNAL_DRAIN_S

    assert trio.current_time() - start <= 1.0 + FINAL_SWEEP_TIMEOUT_S + JOURNAL_DRAIN_S


async def test_a_normal_return_does_not_sweep(autojump_clock: trio.testing.MockClock) -> None:
    orders = Orders()

    async def body(journal: Journal) -> bool:
        await journal.record("stop")
        return True

    assert await run_guarded(
        ":memory:", lambda: 0, body, sweep=orders.sweep, writer=failing_writer("-")
    )
    assert orders.sweeps == []
