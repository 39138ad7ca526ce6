"""Placing one order and finding out what really happened to it.

HTTP 200 on create means *accepted*, not filled. So after placing, we wait for the
outcome inside ``trio.move_on_after(confirm_timeout_s)``: the private stream's order
pushes and a REST poll of the order every ``poll_interval_s`` race, and the first final
status wins. Neither source alone is enough: pushes can be lost (the simulator can drop
them), and polling alone is slow.

On timeout the order is cancelled and read again, and the engine gets the *true*
filled quantity: a partial fill before the cancel is a real position. Every order is
identified by our ``orderLinkId``, so a place that failed ambiguously is resolved by
reading, never by sending again. Cancel-and-read of a stuck order is bounded: past
``resolve_timeout_s`` the order is reported ``unclear`` and the engine reads the
position instead of waiting forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

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
    Event,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderStatus,
    OrderUpdate,
)
from ..core.rules import int_field, number_field
from .api import ExchangeApi
from .metrics import Metrics
from .order_tracking import Creates, OrderWatch

if TYPE_CHECKING:
    from loguru import Logger

__all__ = [
    "ExecutionConfig",
    "Report",
    "cancel_until_known",
    "confirm_order",
    "execute_order",
    "outcome_event",
]

Report = Callable[[Event], Awaitable[None]]


@attrs.frozen(kw_only=True)
class ExecutionConfig:
    """Timing of order confirmation (a bound out of range is refused when it is made)."""

    poll_interval_s: float = number_field(0.5, gt=0)
    confirm_timeout_s: float = number_field(10.0, gt=0)
    #: bound on one round of cancel + final read after a timeout
    cancel_timeout_s: float = number_field(5.0, gt=0)
    #: bound on all rounds: past it the order's outcome is reported ``unclear``
    resolve_timeout_s: float = number_field(30.0, gt=0)
    #: bound on one ProtectPosition (its retries included)
    protect_timeout_s: float = number_field(10.0, gt=0)
    protect_attempts: int = int_field(3, ge=1)


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
        return _fill_report(OrderFilled, link_id, update, update.avg_price)
    reason = f"{why}: {update.status.value}"
    if update.reject_reason and update.reject_reason != "EC_NoError":
        reason += f" ({update.reject_reason})"
    return _failed(link_id, reason, update)


_FillEvent = TypeVar("_FillEvent", OrderFilled, OrderPartiallyFilled)


def _fill_report(
    kind: type[_FillEvent], link_id: str, update: OrderUpdate, avg: Decimal
) -> _FillEvent:
    """A fill of ours as the engine hears it: the order's cumulative fill, fee and id.

    The exchange's order id goes with it: the engine matches the order's closed-PnL row
    by it (without it a close was booked provisionally for good and its row again).
    ``avg`` is ``update.avg_price``, passed apart because the caller has checked it is
    set (a fill event's price is never None).
    """
    return kind(
        order_link_id=link_id,
        filled_qty=update.cum_exec_qty,
        avg_price=avg,
        fee=update.cum_fee,
        order_id=update.order_id,
    )


def _failed(link_id: str, reason: str, seen: OrderUpdate | None) -> OrderFailed:
    """An order's end without a complete fill, carrying what ``seen`` shows filled."""
    if seen is None:
        return OrderFailed(order_link_id=link_id, reason=reason)
    return OrderFailed(
        order_link_id=link_id,
        reason=reason,
        filled_qty=seen.cum_exec_qty,
        avg_price=seen.avg_price if seen.cum_exec_qty > 0 else None,
        fee=seen.cum_fee,
        order_id=seen.order_id,
    )


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
    return _failed(intent.order_link_id, f"unclear: {why}", seen)


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
            await report(_fill_report(OrderPartiallyFilled, link_id, update, update.avg_price))

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
