"""An in-memory exchange fake satisfying ``scalper.app.api.ExchangeApi``, driven by trio time.

Orders evolve by a script: each order's status at a given time after placing. It is
deliberately small: the faithful exchange is the simulator; this fake exists so a task
can be tested under MockClock, where a 10 s timeout costs no real time.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import trio

from scalper.bybit.errors import (
    AmbiguousOutcome,
    DuplicateOrder,
    InvalidRequest,
    NetworkError,
    OrderAlreadyFinal,
    OrderNotFound,
)
from scalper.core.model import (
    ClosedPnl,
    Instrument,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    PositionSnapshot,
    TriggerBy,
)
from scalper.core.scanner import TickerStat


@attrs.define
class Script:
    """How an order behaves: fill ``fill_qty`` at ``price`` after ``fill_after_s`` (None: never)."""

    fill_after_s: float | None = 0.0
    fill_qty: Decimal | None = None  # None: the whole order
    price: Decimal = Decimal("100")
    reject: bool = False
    ambiguous_place: bool = False  # the place call raises, but the order exists
    lost_place: bool = False  # the place call raises, and the order does not exist
    duplicate_place: bool = False  # 110072: our id is taken (the order exists)
    cancel_failures: int = 0  # the first N cancels fail with a network error
    #: the first N cancels answer 110001 although the order exists (the cancel overtook
    #: its create on Bybit's side)
    cancel_not_found: int = 0
    #: the create reaches the exchange this long after the place call returned
    #: (until then the order is unknown: reads say None, cancels say 110001)
    lands_after_s: float = 0.0
    #: every read of the order fails (a degraded exchange) once the order was placed
    reads_fail: bool = False
    fee: Decimal = Decimal(0)  # cumulative fee once filled
    #: the create call takes this long (the order exists on the exchange once it returns)
    place_delay_s: float = 0.0


@attrs.frozen
class StopCall:
    """One set_trading_stop call as the fake saw it."""

    at: float
    symbol: str
    stop_loss: Decimal | None
    trigger_by: TriggerBy


class FakeApi:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.default = Script()
        self.placed: list[OrderIntent] = []
        self.created_at: dict[str, float] = {}
        self.cancelled: dict[str, float] = {}
        self.polls = 0
        self.positions: dict[str, PositionSnapshot] = {}
        self.open_list: list[OrderUpdate] = []
        self.stop_calls: list[StopCall] = []
        #: queued outcomes of the next set_trading_stop calls (an exception to raise)
        self.stop_errors: list[Exception] = []
        self.closed_rows: list[ClosedPnl] = []
        self.closed_pnl_calls: list[tuple[float, int, str | None]] = []
        self.open_positions_calls = 0
        self.cancel_calls: list[tuple[float, str]] = []

    async def instruments(self) -> list[Instrument]:
        return []

    async def ticker_stats(self) -> list[TickerStat]:
        return []

    async def wallet_equity(self) -> Decimal:
        return Decimal(100_000)

    async def place_order(self, intent: OrderIntent) -> str:
        script = self.scripts.get(intent.order_link_id, self.default)
        if script.place_delay_s:
            await trio.sleep(script.place_delay_s)
        if script.reject:
            raise InvalidRequest(10001, "params error", "/v5/order/create")
        if not script.lost_place:
            self.placed.append(intent)
            self.created_at[intent.order_link_id] = trio.current_time()
        if script.ambiguous_place or script.lost_place:
            raise AmbiguousOutcome("no reply")
        if script.duplicate_place:
            raise DuplicateOrder(110072, "OrderLinkedID is duplicate", "/v5/order/create")
        return f"id-{intent.order_link_id}"

    def _intent(self, link_id: str) -> OrderIntent | None:
        return next((i for i in self.placed if i.order_link_id == link_id), None)

    def view(self, link_id: str) -> OrderUpdate | None:
        intent = self._intent(link_id)
        if intent is None:
            return None
        script = self.scripts.get(link_id, self.default)
        age = trio.current_time() - self.created_at[link_id]
        if age < script.lands_after_s:
            return None  # not on the exchange yet
        age -= script.lands_after_s
        filled = Decimal(0)
        if script.fill_after_s is not None and age >= script.fill_after_s:
            filled = script.fill_qty if script.fill_qty is not None else intent.qty
        cancelled_at = self.cancelled.get(link_id)
        if filled == intent.qty:
            status = OrderStatus.FILLED
        elif cancelled_at is not None:
            status = OrderStatus.CANCELLED
        elif filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.NEW
        return OrderUpdate(
            symbol=intent.symbol,
            order_id=f"id-{link_id}",
            order_link_id=link_id,
            side=intent.side,
            order_type=intent.order_type,
            status=status,
            qty=intent.qty,
            price=intent.price,
            avg_price=script.price if filled > 0 else None,
            cum_exec_qty=filled,
            cum_fee=script.fee if filled > 0 else Decimal(0),
            leaves_qty=intent.qty - filled if not status.is_final else Decimal(0),
        )

    async def cancel_order(self, symbol: str, order_link_id: str) -> None:
        self.cancel_calls.append((trio.current_time(), order_link_id))
        script = self.scripts.get(order_link_id, self.default)
        if script.cancel_not_found > 0:
            script.cancel_not_found -= 1
            raise OrderNotFound(
                110001, "order not exists or too late to cancel", "/v5/order/cancel"
            )
        if script.cancel_failures > 0:
            script.cancel_failures -= 1
            raise NetworkError("connection reset")
        view = self.view(order_link_id)
        if view is None:
            raise OrderNotFound(110001, "order not exists", "/v5/order/cancel")
        if view.status.is_final:
            raise OrderAlreadyFinal(110008, "order already filled", "/v5/order/cancel")
        self.cancelled[order_link_id] = trio.current_time()

    async def order(self, symbol: str, order_link_id: str) -> OrderUpdate | None:
        self.polls += 1
        script = self.scripts.get(order_link_id, self.default)
        if script.reads_fail and self._intent(order_link_id) is not None:
            raise NetworkError("connection reset")
        return self.view(order_link_id)

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        return list(self.open_list)

    async def position(self, symbol: str) -> PositionSnapshot:
        return self.positions.get(
            symbol, PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))
        )

    async def open_positions(self) -> list[PositionSnapshot]:
        self.open_positions_calls += 1
        return [p for p in self.positions.values() if not p.is_flat]

    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None,
        take_profit: Decimal | None = None,
        trigger_by: TriggerBy = TriggerBy.MARK_PRICE,
        position_idx: int = 0,
    ) -> None:
        self.stop_calls.append(
            StopCall(
                at=trio.current_time(), symbol=symbol, stop_loss=stop_loss, trigger_by=trigger_by
            )
        )
        if self.stop_errors:
            raise self.stop_errors.pop(0)
        held = self.positions.get(symbol)
        if held is not None and not held.is_flat:
            self.positions[symbol] = attrs.evolve(held, stop_loss=stop_loss)

    async def closed_pnl(
        self, *, start_ms: int, end_ms: int | None = None, symbol: str | None = None
    ) -> list[ClosedPnl]:
        self.closed_pnl_calls.append((trio.current_time(), start_ms, symbol))
        return [
            r
            for r in self.closed_rows
            if r.updated_ms >= start_ms and (symbol is None or r.symbol == symbol)
        ]
