"""The execution task: the engine's order commands, each in its lane.

An entry's confirmation can take ``confirm_timeout_s`` and more, and an exit must
never wait for it. So entries and closes (reduce-only orders) each have their own
lane, at most one order in flight in each; cancels run at once on the side, and
exchange-side stops (``ProtectPosition`` -> trading-stop) have a lane of their own.
What one order's placing and confirmation do is ``app.confirm``; the stop is
``app.protect``; the trackers the lanes share are ``app.order_tracking``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from ..core.model import CancelOrder, Event, OrderFilled, OrderIntent, PlaceOrder, ProtectPosition
from .api import ExchangeApi
from .confirm import (
    ExecutionConfig,
    Report,
    cancel_until_known,
    confirm_order,
    execute_order,
    outcome_event,
)
from .metrics import Metrics
from .order_tracking import Creates, InFlight, OrderWatch
from .protect import protect_position

__all__ = [
    "Creates",
    "ExecCommand",
    "ExecutionConfig",
    "InFlight",
    "OrderWatch",
    "cancel_until_known",
    "confirm_order",
    "execute_order",
    "outcome_event",
    "protect_position",
    "run_execution",
]

ExecCommand = PlaceOrder | CancelOrder | ProtectPosition


async def run_execution(
    api: ExchangeApi,
    watch: OrderWatch,
    commands: trio.MemoryReceiveChannel[ExecCommand],
    report: Report,
    on_fill: Callable[[OrderIntent, Event], Awaitable[None]],
    config: ExecutionConfig,
    metrics: Metrics,
    *,
    inflight: InFlight | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Carry out PlaceOrder (an entry lane and a close lane, one order each at a time),
    CancelOrder (at once, on the side) and ProtectPosition (its own lane).

    Nothing waits behind an entry's confirmation: a close (stop-loss, take-profit,
    halt, flatten) is placed at once in its own lane, a Halt's cancel reaches a working
    order while its confirmation still waits, and ``on_fill`` (journal, fees) runs on
    the side, so an exit is never queued behind bookkeeping either.
    """
    busy = inflight or InFlight()
    creates = Creates()
    cancel_send, cancel_receive = trio.open_memory_channel[CancelOrder](64)
    # The engine keeps one entry and one close working at a time, so small queues are
    # ample; they exist so the dispatcher below never waits behind a confirmation.
    entry_send, entry_receive = trio.open_memory_channel[PlaceOrder](16)
    close_send, close_receive = trio.open_memory_channel[PlaceOrder](16)
    protect_send, protect_receive = trio.open_memory_channel[ProtectPosition](16)

    async def cancel(nursery: trio.Nursery, command: CancelOrder) -> None:
        log = logger.bind(symbol=command.symbol, order_link_id=command.order_link_id)
        with busy.track():
            await cancel_until_known(
                api, command.symbol, command.order_link_id, creates, config, log
            )

    async def cancels(nursery: trio.Nursery) -> None:
        # each cancel on its own: one waiting for its create must not hold up the next
        async for command in cancel_receive:
            nursery.start_soon(cancel, nursery, command)

    async def bookkeeping(intent: OrderIntent, event: Event) -> None:
        with busy.track():
            await on_fill(intent, event)

    async def places(nursery: trio.Nursery, lane: trio.MemoryReceiveChannel[PlaceOrder]) -> None:
        async for command in lane:
            with busy.track():
                event = await execute_order(
                    api, watch, command.intent, config, report, metrics, creates=creates
                )
                creates.finished(command.intent.order_link_id)
                if isinstance(event, OrderFilled):
                    metrics.orders_filled += 1
                else:
                    metrics.orders_failed += 1
                await report(event)
                nursery.start_soon(bookkeeping, command.intent, event)

    async def protects() -> None:
        async for command in protect_receive:
            with busy.track():
                event = await protect_position(api, command, config)
                if event is not None:
                    await report(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancels, nursery)
        nursery.start_soon(places, nursery, entry_receive)
        nursery.start_soon(places, nursery, close_receive)
        nursery.start_soon(protects)
        task_status.started()
        async with commands, cancel_send, entry_send, close_send, protect_send:
            async for command in commands:
                if isinstance(command, CancelOrder):
                    await cancel_send.send(command)
                elif isinstance(command, ProtectPosition):
                    await protect_send.send(command)
                elif command.intent.reduce_only:
                    await close_send.send(command)
                else:
                    await entry_send.send(command)
