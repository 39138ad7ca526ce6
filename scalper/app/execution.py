"""The execution task: place the engine's orders and find out what really happened.

HTTP 200 on create means *accepted*, not filled. So after placing,
we wait for the outcome inside ``trio.move_on_after(confirm_timeout_s)``: the private
stream's order pushes and a REST poll of the order every ``poll_interval_s`` race, and
the first final status wins. Neither source alone is enough: pushes can be lost (the
simulator can drop them), and polling alone is slow.

On timeout the order is cancelled and read again, and the engine gets the *true*
filled quantity: a partial fill before the cancel is a real position. Every order is
identified by our ``orderLinkId``, so a place that failed ambiguously is resolved by
reading, never by sending again.

Lanes: an entry's confirmation can take ``confirm_timeout_s`` and more, and
an exit must never wait for it. So entries and closes (reduce-only orders) each have
their own lane, at most one order in flight in each; cancels run at once on the side,
and exchange-side stops (``ProtectPosition`` -> trading-stop) have a lane of their own.
Cancel-and-read of a stuck order is bounded: past ``resolve_timeout_s`` the order is
reported ``unclear`` and the engine reads the position instead of waiting forever.
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
    ExchangeError,
    OrderAlreadyFinal,
    OrderNotFound,
    RateLimited,
    ServerBusy,
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
    ProtectionFailed,
    ProtectionSet,
    ProtectPosition,
)
from .api import ExchangeApi
from .metrics import Metrics

if TYPE_CHECKING:
    from loguru import Logger

__all__ = [
    "Creates",
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
Report = Callable[[Event], Awaitable[None]]

#: a full per-order push channel only loses pushes the REST poll will see anyway
_WATCH_BUFFER = 64


@attrs.frozen(kw_only=True)
class ExecutionConfig:
    """Timing of order confirmation."""

    poll_interval_s: float = 0.5
    confirm_timeout_s: float = 10.0
    #: bound on one round of cancel + final read after a timeout
    cancel_timeout_s: float = 5.0
    #: bound on all rounds: past it the order's outcome is reported ``unclear``
    resolve_timeout_s: float = 30.0
    #: bound on one ProtectPosition (its retries included)
    protect_timeout_s: float = 10.0
    protect_attempts: int = 3


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
        # the exchange's order id: the engine matches the order's closed-PnL row by it
        # (without it a close was booked provisionally for good and its row again)
        return OrderFilled(
            order_link_id=link_id,
            filled_qty=update.cum_exec_qty,
            avg_price=update.avg_price,
            fee=update.cum_fee,
            order_id=update.order_id,
        )
    reason = f"{why}: {update.status.value}"
    if update.reject_reason and update.reject_reason != "EC_NoError":
        reason += f" ({update.reject_reason})"
    avg = update.avg_price if update.cum_exec_qty > 0 else None
    return OrderFailed(
        order_link_id=link_id,
        reason=reason,
        filled_qty=update.cum_exec_qty,
        avg_price=avg,
        fee=update.cum_fee,
        order_id=update.order_id,
    )


class Creates:
    """The creates under way, so a cancel that overtook its create can tell.

    Bybit answers 110001 ("order not exists") to a cancel that reaches it before the
    create it is about: the cancel must then wait for the create to end and try again,
    or a PostOnly entry the engine let go rests on the book until its timeout.
    """

    def __init__(self) -> None:
        self._ended: dict[str, trio.Event] = {}
        #: True: accepted; False: refused (it does not exist); None: unknown
        self._placed: dict[str, bool | None] = {}

    @contextmanager
    def creating(self, order_link_id: str) -> Iterator[None]:
        """Mark the block as the create of ``order_link_id``."""
        ended = trio.Event()
        self._ended[order_link_id] = ended
        self._placed[order_link_id] = None
        try:
            yield
        finally:
            ended.set()

    def placed(self, order_link_id: str, placed: bool | None) -> None:
        """Record what the create call said (True accepted, False refused)."""
        self._placed[order_link_id] = placed

    def refused(self, order_link_id: str) -> bool:
        """True when its create was refused outright: the order never existed."""
        return self._placed.get(order_link_id) is False

    def known(self, order_link_id: str) -> bool:
        """True while this execution placed ``order_link_id`` and its end is not reported."""
        return order_link_id in self._ended

    def finished(self, order_link_id: str) -> None:
        """The order's end was reported: forget it."""
        self._ended.pop(order_link_id, None)
        self._placed.pop(order_link_id, None)

    async def wait_ended(self, order_link_id: str) -> None:
        """Return once no create of ``order_link_id`` is under way."""
        ended = self._ended.get(order_link_id)
        if ended is not None:
            await ended.wait()


async def cancel_until_known(
    api: ExchangeApi,
    symbol: str,
    order_link_id: str,
    creates: Creates,
    config: ExecutionConfig,
    log: Logger,
) -> OrderUpdate | None:
    """Cancel one order until it is final or known never to have existed; bounded.

    A 110001 does not end it: the cancel may have overtaken the create, so it waits
    for the create to end, reads the order and cancels again while it is live. Gives
    up (returns its last sight, maybe None) after ``cancel_timeout_s``.
    """
    last: OrderUpdate | None = None
    overtaken = False
    with trio.move_on_after(config.cancel_timeout_s):
        while True:
            try:
                await api.cancel_order(symbol, order_link_id)
                log.info("order cancelled on request")
            except OrderAlreadyFinal:
                log.debug("cancel: order already final")
            except OrderNotFound:
                if creates.known(order_link_id) and not overtaken:
                    # the cancel may have overtaken its create: wait for the create
                    # to end, then cancel again at once
                    overtaken = True
                    log.info("cancel: order not found yet (110001): retrying after its create")
                    await creates.wait_ended(order_link_id)
                    if creates.refused(order_link_id):
                        log.debug("cancel: the order was never placed")
                        return None
                    continue
            except BybitError as exc:
                log.warning("cancel failed: {}", exc)
            try:
                last = await api.order(symbol, order_link_id)
            except BybitError as exc:
                log.warning("read after cancel failed: {}", exc)
            else:
                if last is not None and last.status.is_final:
                    return last
                if last is None and not creates.known(order_link_id):
                    return None  # not ours to wait for, and not on the exchange
            await trio.sleep(config.poll_interval_s)
    log.warning("cancel: order state still unknown after {} s", config.cancel_timeout_s)
    return last


async def _cancel_and_read(
    api: ExchangeApi, intent: OrderIntent, config: ExecutionConfig
) -> tuple[OrderUpdate | None, bool]:
    """After a timeout: cancel, then read, until the order is known to be final.

    Reporting a live order as ended would let the engine enter again while it still
    rests on the book, so this retries the cancel and the read with a growing pause
    (``cancel_timeout_s`` per round); but not forever: after ``resolve_timeout_s`` it
    gives up and says so (second value False, "unclear"), with the last order state it
    saw. The engine then reads the position before anything new, and the shutdown
    sweep cancels our orders anyway.
    """
    log = logger.bind(symbol=intent.symbol, order_link_id=intent.order_link_id)
    pause = config.poll_interval_s
    rounds = 0
    seen: OrderUpdate | None = None
    with trio.move_on_after(config.resolve_timeout_s):
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
                    if last is not None:
                        seen = last
                    if last is None and absent:
                        return None, True  # never reached the exchange
                    if last is not None and last.status.is_final:
                        return last, True
                    await trio.sleep(config.poll_interval_s)
            log.warning("order state still unknown after a cancel (round {}): retrying", rounds)
            await trio.sleep(pause)
            pause = min(pause * 2, 10.0)
    log.error(
        "order state unknown {} s after its confirmation timed out: reported unclear",
        config.resolve_timeout_s,
    )
    return seen, False


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


def _unclear(intent: OrderIntent, seen: OrderUpdate | None, why: str) -> OrderFailed:
    """An end nobody could confirm: what was last seen filled, marked ``unclear``."""
    filled = seen.cum_exec_qty if seen is not None else Decimal(0)
    avg = seen.avg_price if seen is not None and filled > 0 else None
    fee = seen.cum_fee if seen is not None else Decimal(0)
    return OrderFailed(
        order_link_id=intent.order_link_id,
        reason=f"unclear: {why}",
        filled_qty=filled,
        avg_price=avg,
        fee=fee,
        order_id=seen.order_id if seen is not None else "",
    )


async def execute_order(
    api: ExchangeApi,
    watch: OrderWatch,
    intent: OrderIntent,
    config: ExecutionConfig,
    report: Report,
    metrics: Metrics,
    *,
    creates: Creates | None = None,
) -> Event:
    """Place one order and return the engine event describing its real outcome."""
    log = logger.bind(symbol=intent.symbol, order_link_id=intent.order_link_id)
    link_id = intent.order_link_id
    creates = creates or Creates()

    async def progress(update: OrderUpdate) -> None:
        if not update.status.is_final and update.avg_price is not None:
            await report(
                OrderPartiallyFilled(
                    order_link_id=link_id,
                    filled_qty=update.cum_exec_qty,
                    avg_price=update.avg_price,
                    fee=update.cum_fee,
                    order_id=update.order_id,
                )
            )

    with watch.watch(link_id) as pushes:
        with creates.creating(link_id):
            try:
                order_id = await api.place_order(intent)
                creates.placed(link_id, True)
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
                # The client could not tell whether it was placed (a 110072 means our id
                # is taken, so it may well exist): find out by reading, never by resending.
                log.warning("order placement ambiguous ({}); confirming by orderLinkId", exc)
            except BybitError as exc:
                creates.placed(link_id, False)
                log.warning("order rejected: {}", exc)
                return OrderFailed(order_link_id=link_id, reason=f"rejected: {exc}")
        final = await confirm_order(api, pushes, intent.symbol, link_id, config, progress)
    if final is None:
        final, known = await _cancel_and_read(api, intent, config)
        if not known:
            return _unclear(intent, final, "order state unknown after its cancel")
        return outcome_event(intent, final, "timeout")
    return outcome_event(intent, final, "ended")


async def _refused(
    api: ExchangeApi, command: ProtectPosition, exc: ExchangeError, log: Logger
) -> Event:
    """The event for a refused stop: ``ProtectionFailed``, unless the position is gone.

    Bybit also refuses a stop for a zero position: the position was closed meanwhile
    (by hand, by a liquidation). That is not a protection failure to close "at once"
    (a reduce-only close of nothing is refused in turn) but an external close: one
    read tells, and the flat position is reported instead.
    """
    try:
        held = await api.position(command.symbol)
    except BybitError as read_exc:
        log.warning("position read after the refused stop failed: {}", read_exc)
        held = None
    if held is not None and held.is_flat:
        log.warning("the position on {} is gone (flat): reported as such", command.symbol)
        return held
    return ProtectionFailed(symbol=command.symbol, reason=str(exc))


async def protect_position(
    api: ExchangeApi, command: ProtectPosition, config: ExecutionConfig
) -> Event | None:
    """Set the position's exchange-side stop; the engine event for its outcome.

    A refusal (``InvalidRequest`` and the other typed refusals: the wrong side of the
    price, say) is ``ProtectionFailed``: the engine then closes the position; unless a
    read shows the position gone, which is reported as the flat ``PositionSnapshot``.
    Transient failures (network, 5xx, rate limits) are retried, bounded; if they
    outlast the bound there is no event: the stop is still missing, and the next
    position read (every reconcile interval) makes the engine ask again.
    """
    log = logger.bind(symbol=command.symbol)
    attempt = 0
    with trio.move_on_after(config.protect_timeout_s):
        while attempt < config.protect_attempts:
            attempt += 1
            try:
                await api.set_trading_stop(
                    command.symbol, stop_loss=command.stop_loss, trigger_by=command.trigger_by
                )
            except (TransportError, ServerBusy, RateLimited) as exc:
                log.warning("exchange stop not set yet (attempt {}): {}", attempt, exc)
                await trio.sleep(config.poll_interval_s * attempt)
                continue
            except ExchangeError as exc:
                log.warning("exchange refused the stop {}: {}", command.stop_loss, exc)
                return await _refused(api, command, exc, log)
            except BybitError as exc:
                log.warning("exchange stop not set: {}", exc)
                return None
            log.debug("exchange stop set: {} by {}", command.stop_loss, command.trigger_by.value)
            return ProtectionSet(symbol=command.symbol, stop_loss=command.stop_loss)
    log.error("exchange stop {} not set after {} attempts", command.stop_loss, attempt)
    return None


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
