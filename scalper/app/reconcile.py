"""Position verification: the exchange is the source of truth (the seed's fix 3).

The engine's idea of the position is checked against a REST read every
``interval_s`` (60 s), and at once whenever anyone asks (after a fill, after a
reconnect, at start-up): requests arrive on a channel of symbols and coalesce, so a
burst of requests costs one read. A failed read is retried after a short pause
rather than waiting a whole interval, because drift is what this task exists to catch.

A read races the orders: if an order's outcome reaches the engine while a read is in
flight, the read may show the position from before that fill, and reporting it after
the outcome would make the engine "adopt" a position that no longer exists. So order
outcomes are counted as they are reported (``OrderEpoch``), and a read that overlapped
one is read again instead of reported. Outcomes and reads share the FIFO control
channel, so a read whose count did not move is never older than an outcome ahead of it.

Start-up is its own step (``startup_sweep``): before the first trade the bot adopts
any open position and cancels stray orders that carry its own ``orderLinkId`` prefix,
on every USDT contract, not only the one it is about to trade.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from ..bybit.errors import BybitError, OrderAlreadyFinal, OrderNotFound
from ..core.model import Event, OpenOrders, PositionSnapshot
from ..core.strategy import is_own_order_link_id
from .api import ExchangeApi

__all__ = ["OrderEpoch", "reconcile_once", "run_reconcile", "startup_sweep"]

Report = Callable[[Event], Awaitable[None]]

#: after a failed read, try again this soon (not a whole interval later)
_RETRY_S = 2.0
#: reads that overlapped an order outcome, read again at once before giving up a round
_OVERLAP_REREADS = 3


class OrderEpoch:
    """How many order outcomes have been reported to the engine (bumped as they are sent)."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        """One more order outcome is on its way to the engine."""
        self.value += 1


async def reconcile_once(
    api: ExchangeApi, symbol: str, report: Report, epoch: OrderEpoch | None = None
) -> PositionSnapshot | None:
    """Read position and open orders of ``symbol`` and report both to the engine.

    With ``epoch``, a read during which an order outcome was reported is read again
    (it may predate the fill); None when every attempt overlapped one.
    """
    for _ in range(1 + _OVERLAP_REREADS):
        seen = epoch.value if epoch is not None else 0
        position = await api.position(symbol)
        orders = await api.open_orders(symbol)
        if epoch is not None and epoch.value != seen:
            logger.bind(symbol=symbol).debug("an order ended during the position read: re-reading")
            continue
        await report(position)
        if epoch is None or epoch.value == seen:  # the same holds for the order list
            link_ids = tuple(o.order_link_id for o in orders)
            await report(OpenOrders(symbol=symbol, order_link_ids=link_ids))
        return position
    return None


async def run_reconcile(
    api: ExchangeApi,
    requests: trio.MemoryReceiveChannel[str],
    report: Report,
    interval_s: float,
    *,
    current: Callable[[], str | None] | None = None,
    epoch: OrderEpoch | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Verify ``current()``'s position every ``interval_s``, and any symbol on request.

    Requests coalesce per symbol, never across symbols: during a symbol switch the
    engine asks for the old symbol (is it flat?) and the new one (anything there?),
    and both must be answered. A symbol stays pending until a read of it succeeds.
    Without ``current``, the periodic read follows the last symbol requested.
    """
    pending: dict[str, None] = {}  # an ordered set
    last: list[str] = []
    wait = interval_s
    task_status.started()
    async with requests:
        while True:
            with trio.move_on_after(wait) as timer:
                pending[await requests.receive()] = None
            while True:  # coalesce a burst of requests: one read per symbol
                try:
                    pending[requests.receive_nowait()] = None
                except trio.WouldBlock:
                    break
            if timer.cancelled_caught:
                symbol = current() if current is not None else (last[-1] if last else None)
                if symbol is not None:
                    pending[symbol] = None
            cause = "periodic" if timer.cancelled_caught else "requested"
            failed = False
            for symbol in list(pending):
                last[:] = [symbol]
                if await _verify(api, symbol, report, epoch, cause):
                    del pending[symbol]
                else:
                    failed = True
            wait = _RETRY_S if failed else interval_s


async def _verify(
    api: ExchangeApi, symbol: str, report: Report, epoch: OrderEpoch | None, cause: str
) -> bool:
    """One verification of ``symbol``, logged; False when it must be retried."""
    log = logger.bind(symbol=symbol)
    try:
        position = await reconcile_once(api, symbol, report, epoch)
    except BybitError as exc:
        log.warning("position verification failed ({}): retrying in {} s", exc, _RETRY_S)
        return False
    if position is None:
        log.info("orders kept ending during the position read: retrying in {} s", _RETRY_S)
        return False
    side = position.side.value if position.side else "flat"
    log.info(
        "verified position ({}): {} {} @ {} on {}",
        cause,
        side,
        position.size,
        position.avg_price,
        symbol,
    )
    return True


async def startup_sweep(api: ExchangeApi, link_id_prefix: str) -> list[PositionSnapshot]:
    """Cancel stray orders of ours on every symbol; return the open positions to adopt."""
    for order in await api.open_orders(None):
        if not is_own_order_link_id(order.order_link_id, link_id_prefix):
            continue  # not ours: a human's or another bot's order is left alone
        log = logger.bind(symbol=order.symbol, order_link_id=order.order_link_id)
        try:
            await api.cancel_order(order.symbol, order.order_link_id)
            log.warning("start-up: cancelled a stray order of ours left from an earlier run")
        except (OrderNotFound, OrderAlreadyFinal):
            log.info("start-up: stray order ended by itself")
    positions = await api.open_positions()
    for position in positions:
        logger.bind(symbol=position.symbol).warning(
            "start-up: found an open position {} {} @ {}",
            position.side.value if position.side else "?",
            position.size,
            position.avg_price,
        )
    return positions
