"""The execution task: place the engine's orders and find out what really happened.

HTTP 200 on create means *accepted*, not filled (the seed's fix 2). So after placing,
we wait for the outcome inside ``trio.move_on_after(confirm_timeout_s)``: the private
stream's order pushes and a REST poll of the order every ``poll_interval_s`` race, and
the first final status wins. Neither source alone is enough: pushes can be lost (the
simulator can drop them), and polling alone is slow.

On timeout the order is cancelled and read again, and the engine gets the *true*
filled quantity: a partial fill before the cancel is a real position. Every order is
identified by our ``orderLinkId``, so a place that failed ambiguously is resolved by
reading, never by sending again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import trio
from loguru import logger

from ..bybit.errors import (
    BybitError,
    DuplicateOrder,
    OrderAlreadyFinal,
    OrderNotFound,
    TransportError,
)
from ..core.model import (
    CancelOrder,
    Event,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderStatus,
    OrderUpdate,
    PlaceOrder,
)
from .api import ExchangeApi
from .metrics import Metrics

if TYPE_CHECKING:
    from loguru import Logger

__all__ = [
    "ExecutionConfig",
    "InFlight",
    "OrderWatch",
    "confirm_order",
    "outcome_event",
    "run_execution",
]

ExecCommand = PlaceOrder | CancelOrder
Report = Callable[[Event], Awaitable[None]]

#: a full per-order push channel only loses pushes the REST poll will see anyway
_WATCH_BUFFER = 64


@attrs.frozen(kw_only=True)
class ExecutionConfig:
    """Timing of order confirmation."""

    poll_interval_s: float = 0.5
    confirm_timeout_s: float = 10.0
    #: bound on the cancel + final read after a timeout
    cancel_timeout_s: float = 5.0


class OrderWatch:
    """Routes private-stream order pushes to the confirmation waiting for that order."""

    def __init__(self) -> None:
        self._waiters: dict[str, trio.MemorySendChannel[OrderUpdate]] = {}

    def push(self, update: OrderUpdate) -> None:
        """Deliver a push (from the private stream task); unknown orders are ignored."""
        send = self._waiters.get(update.order_link_id)
        if send is not None:
            # the REST poll covers whatever the stream could not deliver
            with suppress(trio.WouldBlock, trio.BrokenResourceError):
                send.send_nowait(update)

    @contextmanager
    def watch(self, order_link_id: str) -> Iterator[trio.MemoryReceiveChannel[OrderUpdate]]:
        """Receive pushes for one order while the ``with`` block runs."""
        send, receive = trio.open_memory_channel[OrderUpdate](_WATCH_BUFFER)
        self._waiters[order_link_id] = send
        try:
            yield receive
        finally:
            del self._waiters[order_link_id]
            send.close()


async def confirm_order(
    api: ExchangeApi,
    pushes: trio.MemoryReceiveChannel[OrderUpdate],
    symbol: str,
    order_link_id: str,
    config: ExecutionConfig,
    on_progress: Callable[[OrderUpdate], Awaitable[None]],
) -> OrderUpdate | None:
    """Race pushes against polls until a final status; None when the timeout ran out.

    ``on_progress`` sees every update with more filled than the last one.
    """
    final: OrderUpdate | None = None
    filled = Decimal(0)

    async def seen(update: OrderUpdate, scope: trio.CancelScope) -> None:
        nonlocal final, filled
        if update.cum_exec_qty > filled:
            filled = update.cum_exec_qty
            await on_progress(update)
        if update.status.is_final and final is None:
            final = update
            scope.cancel()

    async def from_stream(scope: trio.CancelScope) -> None:
        async for update in pushes:
            await seen(update, scope)

    async def from_polls(scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(config.poll_interval_s)
            try:
                update = await api.order(symbol, order_link_id)
            except BybitError as exc:
                logger.bind(order_link_id=order_link_id).warning("order poll failed: {}", exc)
                continue
            if update is not None:
                await seen(update, scope)

    with trio.move_on_after(config.confirm_timeout_s):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(from_stream, nursery.cancel_scope)
            nursery.start_soon(from_polls, nursery.cancel_scope)
    return final


def outcome_event(intent: OrderIntent, update: OrderUpdate | None, why: str) -> Event:
    """The engine event for an order's end: filled, or failed with its true fill."""
    link_id = intent.order_link_id
    if update is None:
        return OrderFailed(order_link_id=link_id, reason=why)
    if update.status is OrderStatus.FILLED and update.avg_price is not None:
        return OrderFilled(
            order_link_id=link_id, filled_qty=update.cum_exec_qty, avg_price=update.avg_price
        )
    reason = f"{why}: {update.status.value}"
    if update.reject_reason and update.reject_reason != "EC_NoError":
        reason += f" ({update.reject_reason})"
    avg = update.avg_price if update.cum_exec_qty > 0 else None
    return OrderFailed(
        order_link_id=link_id, reason=reason, filled_qty=update.cum_exec_qty, avg_price=avg
    )


async def _cancel_and_read(
    api: ExchangeApi, intent: OrderIntent, config: ExecutionConfig
) -> OrderUpdate | None:
    """After a timeout: cancel, then read, until the order is known to be final.

    Reporting a live order as ended would let the engine enter again while it still
    rests on the book, so this does not give up: it retries the cancel and the read
    with a growing pause (bounded by ``cancel_timeout_s`` per round) until the
    exchange says the order is final, or that it does not exist. Only a shutdown
    cancels it, and the shutdown sweep cancels our orders anyway.
    """
    log = logger.bind(symbol=intent.symbol, order_link_id=intent.order_link_id)
    pause = config.poll_interval_s
    rounds = 0
    while True:
        rounds += 1
        with trio.move_on_after(config.cancel_timeout_s):
            absent = await _cancel_once(api, intent, log, announce=rounds == 1)
            while True:
                try:
                    last = await api.order(intent.symbol, intent.order_link_id)
                except BybitError as exc:
                    log.warning("final read failed: {}", exc)
                    break
                if last is None and absent:
                    return None  # never reached the exchange
                if last is not None and last.status.is_final:
                    return last
                await trio.sleep(config.poll_interval_s)
        log.warning("order state still unknown after a cancel (round {}): retrying", rounds)
        await trio.sleep(pause)
        pause = min(pause * 2, 10.0)


async def _cancel_once(
    api: ExchangeApi, intent: OrderIntent, log: Logger, *, announce: bool
) -> bool:
    """One cancel attempt; True when the exchange says the order does not exist."""
    try:
        await api.cancel_order(intent.symbol, intent.order_link_id)
        if announce:
            log.info("order cancelled: no final status within its confirmation time")
    except OrderNotFound:
        return True
    except OrderAlreadyFinal as exc:
        log.info("cancel after timeout: order already final ({})", exc.ret_msg)
    except BybitError as exc:
        log.warning("cancel after timeout failed: {}", exc)
    return False


async def execute_order(
    api: ExchangeApi,
    watch: OrderWatch,
    intent: OrderIntent,
    config: ExecutionConfig,
    report: Report,
    metrics: Metrics,
) -> Event:
    """Place one order and return the engine event describing its real outcome."""
    log = logger.bind(symbol=intent.symbol, order_link_id=intent.order_link_id)
    link_id = intent.order_link_id

    async def progress(update: OrderUpdate) -> None:
        if not update.status.is_final and update.avg_price is not None:
            await report(
                OrderPartiallyFilled(
                    order_link_id=link_id,
                    filled_qty=update.cum_exec_qty,
                    avg_price=update.avg_price,
                )
            )

    with watch.watch(link_id) as pushes:
        try:
            order_id = await api.place_order(intent)
            metrics.orders_placed += 1
            log.info(
                "order placed: {} {} {} qty={} price={} id={}",
                intent.side.value,
                intent.order_type.value,
                intent.time_in_force.value,
                intent.qty,
                intent.price,
                order_id,
            )
        except (TransportError, DuplicateOrder) as exc:
            # The client could not tell whether it was placed (a 110072 means our id is
            # taken, so it may well exist): find out by reading, never by resending.
            log.warning("order placement ambiguous ({}); confirming by orderLinkId", exc)
        except BybitError as exc:
            log.warning("order rejected: {}", exc)
            return OrderFailed(order_link_id=link_id, reason=f"rejected: {exc}")
        final = await confirm_order(api, pushes, intent.symbol, link_id, config, progress)
    if final is None:
        final = await _cancel_and_read(api, intent, config)
        return outcome_event(intent, final, "timeout")
    return outcome_event(intent, final, "ended")


class InFlight:
    """Counts order operations under way, so a shutdown can wait for them to end.

    Cancelling the execution task in the middle of a create could leave an order
    landing on the exchange after the final sweep; the bot waits for ``idle`` first.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = trio.Event()
        self._idle.set()

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count the block as one operation in flight."""
        if self.count == 0:
            self._idle = trio.Event()
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return once nothing is in flight."""
        while self.count:
            await self._idle.wait()


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
    """Carry out PlaceOrder (one at a time) and CancelOrder (at once, on the side).

    Cancels do not queue behind a confirmation: a Halt must reach a working order
    while its confirmation is still waiting. ``on_fill`` (journal, fees) runs on the
    side too, so an exit is never queued behind bookkeeping.
    """
    busy = inflight or InFlight()
    cancel_send, cancel_receive = trio.open_memory_channel[CancelOrder](64)
    # The engine keeps one order working at a time, so a small queue is ample; it
    # exists so the dispatcher below never waits behind a confirmation.
    place_send, place_receive = trio.open_memory_channel[PlaceOrder](16)

    async def cancels() -> None:
        async for command in cancel_receive:
            log = logger.bind(symbol=command.symbol, order_link_id=command.order_link_id)
            with busy.track():
                try:
                    await api.cancel_order(command.symbol, command.order_link_id)
                    log.info("order cancelled on request")
                except (OrderNotFound, OrderAlreadyFinal):
                    log.debug("cancel: order already final")
                except BybitError as exc:
                    log.warning("cancel failed: {}", exc)

    async def bookkeeping(intent: OrderIntent, event: Event) -> None:
        with busy.track():
            await on_fill(intent, event)

    async def places(nursery: trio.Nursery) -> None:
        async for command in place_receive:
            with busy.track():
                event = await execute_order(api, watch, command.intent, config, report, metrics)
                if isinstance(event, OrderFilled):
                    metrics.orders_filled += 1
                else:
                    metrics.orders_failed += 1
                await report(event)
                nursery.start_soon(bookkeeping, command.intent, event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancels)
        nursery.start_soon(places, nursery)
        task_status.started()
        async with commands, cancel_send, place_send:
            async for command in commands:
                if isinstance(command, CancelOrder):
                    await cancel_send.send(command)
                else:
                    await place_send.send(command)
