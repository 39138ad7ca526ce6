"""The order endpoints: place, amend, cancel, and the reads that find an order again.

Placing is delegated to ``OrderCreator`` (``orders``), which never repeats a create
blindly; amend and cancel are safe to repeat and go through the retried call. The reads
(``order``, ``open_orders``, history, executions) are what order entry and the
reconciler use to learn what really exists on the exchange.
"""

from __future__ import annotations

from decimal import Decimal

from scalper.core.model import Fill, OrderIntent, OrderUpdate

from .endpoints import Endpoints, need_id, order_params, parsed_row, result_list
from .orders import OrderCreator, OrderRef
from .paths import (
    CATEGORY,
    EXECUTION_LIST,
    ORDER_AMEND,
    ORDER_CANCEL,
    ORDER_CANCEL_ALL,
    ORDER_HISTORY,
    ORDER_REALTIME,
)
from .rows import fill_from_wire, order_from_wire
from .transport import dec_str

__all__ = ["OrderCalls"]


class OrderCalls(Endpoints):
    """Order entry and the order reads; ``_creator`` is set by the facade."""

    _creator: OrderCreator

    async def place_order(self, intent: OrderIntent) -> str:
        """Place ``intent`` exactly once; returns Bybit's orderId.

        Idempotent by ``intent.order_link_id`` (see ``orders.py``): whatever the
        faults, at most one order with this id exists, and if it exists its id is
        returned. Raises ``AmbiguousOutcome`` when the outcome could not be resolved
        within the retry bounds (the order may exist: reconcile) -- including a 110072
        whose order the read-back cannot see yet, and any failure after a create of
        this call may have executed -- or a final ``ExchangeError`` / 4xx
        ``HTTPStatusError`` when Bybit rejected it and nothing was executed.
        """
        return await self._creator.place(intent)

    async def amend_order(
        self,
        symbol: str,
        *,
        order_link_id: str | None = None,
        order_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> str:
        """Change qty and/or price of a working order; returns its orderId."""
        need_id(order_link_id, order_id)
        result = await self._retrier.call(
            "POST",
            ORDER_AMEND,
            order_params(
                symbol,
                order_link_id,
                order_id,
                qty=None if qty is None else dec_str(qty),
                price=None if price is None else dec_str(price),
            ),
        )
        return str(result.get("orderId", order_id or ""))

    async def cancel_order(
        self, symbol: str, order_link_id: str | None = None, *, order_id: str | None = None
    ) -> None:
        """Cancel one order (safe to repeat).

        Raises ``OrderAlreadyFinal`` (110008/110010: filled or cancelled already) and
        ``OrderNotFound`` (110001: unknown, or gone) so the caller can read the final
        state; both mean "nothing left to cancel".
        """
        need_id(order_link_id, order_id)
        params = order_params(symbol, order_link_id, order_id)
        await self._retrier.call("POST", ORDER_CANCEL, params)

    async def cancel_all(self, symbol: str) -> list[OrderRef]:
        """Cancel every open order on ``symbol``; returns what was cancelled."""
        result = await self._retrier.call(
            "POST", ORDER_CANCEL_ALL, {"category": CATEGORY, "symbol": symbol}
        )
        return [
            OrderRef(str(r.get("orderId", "")), str(r.get("orderLinkId", "")))
            for r in result_list(result, ORDER_CANCEL_ALL)
        ]

    async def order(
        self,
        symbol: str,
        order_link_id: str | None = None,
        *,
        order_id: str | None = None,
        deadline: float | None = None,
    ) -> OrderUpdate | None:
        """One order by client or exchange id: ``ORDER_REALTIME``, then ``ORDER_HISTORY``.

        None when neither knows it. ``deadline`` (trio time) bounds both reads together;
        without it each read has its own ``total_budget_s``.
        """
        need_id(order_link_id, order_id)
        params = order_params(symbol, order_link_id, order_id)
        for path in (ORDER_REALTIME, ORDER_HISTORY):
            result = await self._retrier.call("GET", path, params, deadline=deadline)
            for row in result_list(result, path):
                update = parsed_row(order_from_wire, row, path)
                if (order_link_id is None or update.order_link_id == order_link_id) and (
                    order_id is None or update.order_id == order_id
                ):
                    return update
        return None

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        """Every working order on ``symbol``, or on every USDT contract (all pages).

        Plain orders only (``orderFilter=Order``): every order we place is one, and the
        conditional orders Bybit keeps for a position's Full-mode stops (orderLinkId "")
        are the exchange's protection, not orders to reconcile or cancel."""
        where = {"symbol": symbol} if symbol else {"settleCoin": "USDT"}
        rows = await self._paged(
            ORDER_REALTIME,
            {"category": CATEGORY, **where, "openOnly": 0, "orderFilter": "Order", "limit": 50},
        )
        return [parsed_row(order_from_wire, row, ORDER_REALTIME) for row in rows]

    async def order_history(
        self,
        symbol: str,
        *,
        order_link_id: str | None = None,
        order_id: str | None = None,
        limit: int = 50,
    ) -> list[OrderUpdate]:
        """Recent closed orders on ``symbol``, newest first (one page of ``limit``)."""
        path = ORDER_HISTORY
        params = order_params(symbol, order_link_id, order_id, limit=limit)
        result = await self._retrier.call("GET", path, params)
        return [parsed_row(order_from_wire, row, path) for row in result_list(result, path)]

    async def executions(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        order_link_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 100,
    ) -> list[Fill]:
        """Our trade fills on ``symbol``, newest first (one page; funding etc. left out)."""
        path = EXECUTION_LIST
        params = order_params(symbol, order_link_id, order_id, startTime=start_ms, limit=limit)
        result = await self._retrier.call("GET", path, params)
        fills: list[Fill] = []
        for row in result_list(result, path):
            fill = parsed_row(fill_from_wire, row, path)
            if fill is not None:
                fills.append(fill)
        return fills
