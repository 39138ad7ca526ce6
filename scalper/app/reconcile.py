"""Position verification: the exchange is the source of truth.

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

A read covers every linear position in one call (``open_positions``, one
``settleCoin=USDT`` request), not only the current symbol. The engine is shown the
current symbol and every symbol this session traded (flat when not listed), so a
position left on an old symbol (a late fill after a switch) is never unseen; such a
leftover is closed here at once, reduce-only, with our own orderLinkId. Closed-PnL rows
of the UTC day (``/v5/position/closed-pnl``) are read every interval and on request, so
closes the engine did not make (the exchange's stop, a liquidation, a human) are
counted in the daily loss.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from decimal import Decimal

import attrs
import trio
from loguru import logger

from ..bybit.errors import BybitError, OrderAlreadyFinal, OrderNotFound
from ..core.instrument import round_qty
from ..core.model import (
    ClosedPnlRows,
    Event,
    Instrument,
    OpenOrders,
    OrderIntent,
    OrderType,
    PositionSnapshot,
    RequestClosedPnl,
    TimeInForce,
)
from ..core.strategy import is_own_order_link_id
from .api import ExchangeApi

__all__ = [
    "DAY_MS",
    "LeftoverCloser",
    "OrderEpoch",
    "ReconcileRequest",
    "day_start_ms",
    "reconcile_once",
    "run_reconcile",
    "startup_sweep",
]

Report = Callable[[Event], Awaitable[None]]
#: a symbol whose position (and open orders) to read, or a closed-PnL read
ReconcileRequest = str | RequestClosedPnl

#: after a failed read, try again this soon (not a whole interval later)
_RETRY_S = 2.0
#: reads that overlapped an order outcome, read again at once before giving up a round
_OVERLAP_REREADS = 3
DAY_MS = 86_400_000
#: a leftover close gets this long to be confirmed before the next round looks again
_LEFTOVER_CONFIRM_S = 5.0


def day_start_ms(now_ms: int) -> int:
    """Start of the UTC day holding ``now_ms`` (the daily loss limit's day)."""
    return now_ms - now_ms % DAY_MS


class OrderEpoch:
    """How many order outcomes have been reported to the engine (bumped as they are sent)."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        """One more order outcome is on its way to the engine."""
        self.value += 1


def _flat(symbol: str) -> PositionSnapshot:
    return PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))


async def reconcile_once(
    api: ExchangeApi,
    symbols: str | Sequence[str],
    report: Report,
    epoch: OrderEpoch | None = None,
) -> dict[str, PositionSnapshot] | None:
    """Read every position and open order once; report those of ``symbols`` to the engine.

    Each symbol gets a ``PositionSnapshot`` (flat when the exchange lists none) and an
    ``OpenOrders``. Returns every open position by symbol (listed or not). With
    ``epoch``, a read during which an order outcome was reported is read again (it
    may predate the fill); None when every attempt overlapped one.
    """
    wanted = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
    for _ in range(1 + _OVERLAP_REREADS):
        seen = epoch.value if epoch is not None else 0
        positions = {p.symbol: p for p in await api.open_positions()}
        orders = await api.open_orders(None)
        if epoch is not None and epoch.value != seen:
            logger.debug("an order ended during the position read: re-reading")
            continue
        for symbol in wanted:
            await report(positions.get(symbol) or _flat(symbol))
        if epoch is None or epoch.value == seen:  # the same holds for the order list
            for symbol in wanted:
                link_ids = tuple(o.order_link_id for o in orders if o.symbol == symbol)
                await report(OpenOrders(symbol=symbol, order_link_ids=link_ids))
        return positions
    return None


@attrs.define(eq=False)
class LeftoverCloser:
    """Closes a position left on a symbol this session traded but no longer trades.

    Why close rather than adopt: the engine trades one symbol and is watching another
    one now; adopting would mean switching back (dropping its current symbol's book
    and signal window) for a position it never meant to hold. A reduce-only market
    order cannot overshoot into a new position, so closing is the simple, safe move.
    Its orderLinkId is ours (``<prefix>-<session>-l<n>``) but not the engine's: the
    engine never sees its outcome; the next read shows the result.
    """

    _api: ExchangeApi
    _instruments: Mapping[str, Instrument]
    _prefix: str
    _session: str
    _counter: int = attrs.field(init=False, default=0)
    closes: list[str] = attrs.field(init=False, factory=list)

    async def close(self, position: PositionSnapshot) -> None:
        """One reduce-only market close of ``position`` (capped to one order's max)."""
        log = logger.bind(symbol=position.symbol)
        instrument = self._instruments.get(position.symbol)
        if instrument is None or position.side is None:
            log.warning(
                "ALERT: position left on {} and no trading rules to close it", position.symbol
            )
            return
        qty = min(round_qty(instrument, position.size), instrument.max_mkt_qty)
        if qty <= 0:
            log.warning(
                "ALERT: position {} left on {} is below the qty step",
                position.size,
                position.symbol,
            )
            return
        self._counter += 1
        link_id = f"{self._prefix}-{self._session}-l{self._counter}"
        intent = OrderIntent(
            symbol=position.symbol,
            side=position.side.opposite,
            order_type=OrderType.MARKET,
            qty=qty,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            order_link_id=link_id,
        )
        log.warning(
            "ALERT: position {} {} left on {}, a symbol this session traded but no longer "
            "trades: closing it ({})",
            position.side.value,
            position.size,
            position.symbol,
            link_id,
        )
        self.closes.append(link_id)
        try:
            await self._api.place_order(intent)
        except BybitError as exc:
            # an unclear create is resolved by the next read: the position tells
            log.warning("leftover close {} not confirmed: {}", link_id, exc)
            return
        with trio.move_on_after(_LEFTOVER_CONFIRM_S):
            while True:
                try:
                    update = await self._api.order(position.symbol, link_id)
                except BybitError as exc:
                    log.warning("leftover close {}: read failed: {}", link_id, exc)
                    update = None
                if update is not None and update.status.is_final:
                    log.info(
                        "leftover close {} ended {}: {} filled",
                        link_id,
                        update.status.value,
                        update.cum_exec_qty,
                    )
                    return
                await trio.sleep(0.2)


async def run_reconcile(
    api: ExchangeApi,
    requests: trio.MemoryReceiveChannel[ReconcileRequest],
    report: Report,
    interval_s: float,
    *,
    current: Callable[[], str | None] | None = None,
    traded: Callable[[], Collection[str]] | None = None,
    leftovers: LeftoverCloser | None = None,
    clock_ms: Callable[[], int] | None = None,
    epoch: OrderEpoch | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Verify positions every ``interval_s``, and at once on request.

    Each round reads every position in one call and reports the current symbol,
    every symbol ``traded`` this session and every symbol requested (requests
    coalesce: a burst costs one read). A symbol stays pending until a read of it
    succeeds. Without ``current``, the periodic read follows the last symbol
    requested. A non-flat position on a traded symbol that is not ``current`` is
    closed by ``leftovers``. With ``clock_ms``, closed-PnL rows of the UTC day are
    read every interval and on every ``RequestClosedPnl``.
    """
    pending: dict[str, None] = {}  # an ordered set
    pnl_pending = False
    last: list[str] = []
    wait = interval_s
    task_status.started()
    async with requests:
        while True:
            with trio.move_on_after(wait) as timer:
                first = await requests.receive()
                if isinstance(first, RequestClosedPnl):
                    pnl_pending = True
                else:
                    pending[first] = None
            while True:  # coalesce a burst of requests: one read
                try:
                    more = requests.receive_nowait()
                except trio.WouldBlock:
                    break
                if isinstance(more, RequestClosedPnl):
                    pnl_pending = True
                else:
                    pending[more] = None
            periodic = timer.cancelled_caught
            if periodic:
                pnl_pending = True
                symbol = current() if current is not None else (last[-1] if last else None)
                if symbol is not None:
                    pending[symbol] = None
            failed = False
            if pending or periodic:
                now = current() if current is not None else None
                session = [s for s in (traded() if traded is not None else ()) if s != now]
                symbols = list(dict.fromkeys([*pending, *([now] if now else []), *session]))
                if pending:
                    last[:] = [list(pending)[-1]]
                if symbols:
                    cause = "periodic" if periodic else "requested"
                    positions = await _verify(api, symbols, report, epoch, cause)
                    if positions is None:
                        failed = True
                    else:
                        pending.clear()
                        if leftovers is not None:
                            for symbol in session:
                                held = positions.get(symbol)
                                if held is not None and not held.is_flat:
                                    await leftovers.close(held)
            if pnl_pending and clock_ms is not None:
                if await _closed_pnl(api, clock_ms(), report):
                    pnl_pending = False
                else:
                    failed = True
            elif clock_ms is None:
                pnl_pending = False
            wait = _RETRY_S if failed else interval_s


async def _closed_pnl(api: ExchangeApi, now_ms: int, report: Report) -> bool:
    """Read the UTC day's closed-PnL rows and report them; False when it must be retried."""
    try:
        rows = await api.closed_pnl(start_ms=day_start_ms(now_ms))
    except BybitError as exc:
        logger.warning("closed-PnL read failed ({}): retrying in {} s", exc, _RETRY_S)
        return False
    if rows:  # nothing closed today: nothing to tell
        await report(ClosedPnlRows(rows=tuple(rows)))
    return True


async def _verify(
    api: ExchangeApi, symbols: list[str], report: Report, epoch: OrderEpoch | None, cause: str
) -> dict[str, PositionSnapshot] | None:
    """One verification of ``symbols``, logged; None when it must be retried."""
    try:
        positions = await reconcile_once(api, symbols, report, epoch)
    except BybitError as exc:
        logger.warning("position verification failed ({}): retrying in {} s", exc, _RETRY_S)
        return None
    if positions is None:
        logger.info("orders kept ending during the position read: retrying in {} s", _RETRY_S)
        return None
    for symbol in symbols:
        position = positions.get(symbol) or _flat(symbol)
        side = position.side.value if position.side else "flat"
        logger.bind(symbol=symbol).info(
            "verified position ({}): {} {} @ {} on {}",
            cause,
            side,
            position.size,
            position.avg_price,
            symbol,
        )
    return positions


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
