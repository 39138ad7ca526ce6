"""The simulated exchange's order endpoints (``/v5/order/*``, ``/v5/execution/list``).

One of the three endpoint groups ``sim.rest.RestApi`` routes to: the writes hand the
parameters to the venue (which validates and matches), the reads filter and page the
account's orders and fills the way Bybit does. Authentication, rate limits and the
``category`` check happen in the route before the call.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .accounts import Account, Order
from .errors import VenueError
from .params import Params, Result, listed_symbol, opt_int, opt_str, page
from .rows import execution_row
from .venue import Exchange

__all__ = ["OrderEndpoints"]

_ORDER_FILTERS = ("Order", "StopOrder", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder")


@attrs.frozen
class OrderEndpoints:
    """Create, amend, cancel and list the orders and fills of the venue ``ex``."""

    ex: Exchange

    # ------------------------------------------------------------- writes
    def create(self, account: Account, params: Params) -> Result:
        return _ids(self.ex.create_order(account, params))

    def amend(self, account: Account, params: Params) -> Result:
        return _ids(self.ex.amend_order(account, params))

    def cancel(self, account: Account, params: Params) -> Result:
        return _ids(self.ex.cancel_order(account, params))

    def cancel_all(self, account: Account, params: Params) -> Result:
        orders = self.ex.cancel_all(account, params)
        return {"list": [_ids(o) for o in orders], "success": "1"}

    # -------------------------------------------------------------- reads
    def realtime(self, account: Account, params: Params) -> Result:
        match = self._order_filter(params)
        open_only = opt_int(params, "openOnly", 0, 0, 2)
        by_id = opt_str(params, "orderId") is not None or opt_str(params, "orderLinkId") is not None
        kinds = opt_str(params, "orderFilter")
        if kinds is not None and kinds not in _ORDER_FILTERS:
            raise VenueError(10001, f"params error: orderFilter invalid: {kinds}")
        if kinds not in (None, "Order"):
            # conditional orders are not modelled; a position's Full-mode stops live on
            # the position, not in this list
            return self._order_page([], params)
        open_orders = sorted(account.open_orders.values(), key=_newest)
        closed = sorted(account.recent_closed, key=_newest)
        if by_id:
            orders = open_orders + closed
        elif open_only == 0:
            orders = open_orders
        else:
            orders = closed
        return self._order_page([o for o in orders if match(o)], params)

    def history(self, account: Account, params: Params) -> Result:
        symbol = listed_symbol(params, self.ex.specs)
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        status = opt_str(params, "orderStatus")
        start = opt_int(params, "startTime", 0, 0, 2**62)
        end = opt_int(params, "endTime", 2**62, 0, 2**62)
        orders = [
            o
            for o in sorted(account.orders.values(), key=_newest)
            if (symbol is None or o.symbol == symbol)
            and (order_id is None or o.order_id == order_id)
            and (link is None or o.order_link_id == link)
            and (status is None or o.status == status)
            and start <= o.created_ms <= end
        ]
        return self._order_page(orders, params)

    def executions(self, account: Account, params: Params) -> Result:
        symbol = listed_symbol(params, self.ex.specs)
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        exec_type = opt_str(params, "execType")
        limit = opt_int(params, "limit", 50, 1, 100)
        start_t = opt_int(params, "startTime", 0, 0, 2**62)
        end_t = opt_int(params, "endTime", 2**62, 0, 2**62)
        fills = [
            e
            for e in reversed(account.executions)
            if (symbol is None or e.order.symbol == symbol)
            and (order_id is None or e.order.order_id == order_id)
            and (link is None or e.order.order_link_id == link)
            and (exec_type is None or exec_type == "Trade")
            and start_t <= e.exec_ms <= end_t
        ]
        listed, cursor = page(fills, params, limit)
        return {
            "nextPageCursor": cursor,
            "category": "linear",
            "list": [execution_row(e, self.ex.specs[e.order.symbol], stream=False) for e in listed],
        }

    def _order_filter(self, params: Params) -> Callable[[Order], bool]:
        symbol = listed_symbol(params, self.ex.specs)
        base = opt_str(params, "baseCoin")
        settle = opt_str(params, "settleCoin")
        if symbol is None and base is None and settle is None:
            raise VenueError(
                10001,
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin",
            )
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        specs = self.ex.specs

        def match(order: Order) -> bool:
            return (
                (symbol is None or order.symbol == symbol)
                and (base is None or specs[order.symbol].base == base)
                and (settle is None or settle == "USDT")
                and (order_id is None or order.order_id == order_id)
                and (link is None or order.order_link_id == link)
            )

        return match

    def _order_page(self, orders: list[Order], params: Params) -> Result:
        limit = opt_int(params, "limit", 20, 1, 50)
        listed, cursor = page(orders, params, limit)
        return {
            "list": [self.ex.order_row(o) for o in listed],
            "nextPageCursor": cursor,
            "category": "linear",
        }


def _ids(order: Order) -> Result:
    """What an order write answers: the order's two ids."""
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def _newest(order: Order) -> tuple[int, str]:
    return (-order.created_ms, order.order_id)
