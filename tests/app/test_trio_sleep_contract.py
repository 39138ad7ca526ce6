"""The trio behaviour ``StrategyRunner._market_now`` relies on, checked on the trio we pin.

The idle shortcut asks whether the control loop sleeps in its receive by reading its
task's ``custom_sleep_data`` (not None: asleep on an empty channel), instead of the
channel's public ``statistics().tasks_waiting_receive``, which builds an object per
message. trio documents that rescheduling a task clears it; that the channel's receive
sets it while sleeping is trio's implementation. This test holds the two answers equal
at every scheduler pass, through buffered and unbuffered deliveries, so a trio upgrade
that changed either fails here, not as a reordered message in production.
"""

from __future__ import annotations

import random

import trio
import trio.testing


async def test_custom_sleep_data_says_asleep_in_receive_exactly_when_statistics_does() -> None:
    rng = random.Random(11)
    send, receive = trio.open_memory_channel[int](2)
    got: list[int] = []
    checked = 0
    seen = {True: 0, False: 0}
    mismatches: list[tuple[int, bool, object]] = []

    async def consumer(task_status: trio.TaskStatus[trio.lowlevel.Task]) -> None:
        task_status.started(trio.lowlevel.current_task())
        async for item in receive:
            got.append(item)
            if rng.random() < 0.3:
                await trio.lowlevel.checkpoint()  # busy a while: sends get buffered

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            task = await nursery.start(consumer)
            sent = 0
            for _ in range(2_000):
                waiting = receive.statistics().tasks_waiting_receive > 0
                asleep = task.custom_sleep_data is not None
                checked += 1
                seen[waiting] += 1
                if waiting != asleep:
                    mismatches.append((checked, waiting, task.custom_sleep_data))
                if rng.random() < 0.5:
                    try:
                        send.send_nowait(sent)
                        sent += 1
                        # delivered or buffered: either way no longer "asleep, nothing on
                        # its way" the moment the send returns
                        assert task.custom_sleep_data is None
                    except trio.WouldBlock:
                        pass
                await trio.lowlevel.checkpoint()
            await send.aclose()
    assert mismatches == []
    assert min(seen.values()) > 100  # both states were checked, many times
    assert got == list(range(sent)) and sent > 500
