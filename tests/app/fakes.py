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
    Instrument,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    PositionSnapshot,
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

    async def instruments(self) -> list[Instrument]:
        return []

    async def ticker_stats(self) -> list[TickerStat]:
        return []

    async def wallet_equity(self) -> Decimal:
        return Decimal(100_000)

    async def place_order(self, intent: OrderIntent) -> str:
        script = self.scripts.get(intent.order_link_id, self.default)
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
            leaves_qty=intent.qty - filled if not status.is_final else Decimal(0),
        )

    async def cancel_order(self, symbol: str, order_link_id: str) -> None:
        script = self.scripts.get(order_link_id, self.default)
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
        return self.view(order_link_id)

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        return list(self.open_list)

    async def position(self, symbol: str) -> PositionSnapshot:
        return self.positions.get(
            symbol, PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))
        )

    async def open_positions(self) -> list[PositionSnapshot]:
        return [p for p in self.positions.values() if not p.is_flat]
