"""Matching: orders in, fills out, for every account of the venue.

``Matcher`` validates and carries out order operations (create, amend, cancel,
cancel-all, set-leverage, a close from outside) against the synthetic books, books
fills into accounts, and records what changed per account (``Changes``) for the venue to
push. Refusals raise ``VenueError`` with Bybit's retCode.

Matching rules (the simulator's model of Bybit's engine):

* Market orders are IOC limit orders at a protection price 3 % through the touch; they
  walk the synthetic book level by level (partial fills when the book is too thin).
* Limit GTC/IOC/FOK take what crosses, then GTC rests, IOC cancels the rest, FOK is all
  or nothing. PostOnly that would cross is accepted, then Cancelled with
  ``EC_PostOnlyWillTakeLiquidity`` (as Bybit does).
* Resting orders are not shown in the public book; they fill as maker when the market
  trades through their price (fully) or at it (up to the traded volume), or when the
  opposite touch moves across them.
* Reduce-only orders never grow a position: refused with 110017 when there is nothing
  to reduce, clamped to the position at fill time, cancelled once it is flat.
* Protective stops (``tpslMode=Full``) live on the position: armed by an opening order
  or ``set_trading_stop``, fired by ``check_stops`` when the market crosses them, as a
  reduce-only market close (``sim.stops`` has the rules).
* Every order that closes some of a position gets a closed-PnL record, net of its
  closing fee and of the opening fees of the closed quantity (pro rata).
* Hedge mode (an account option) is modelled on one net position per symbol: an order
  or trading-stop must carry positionIdx 1 (buy side) or 2 (sell side), 0 is refused as
  Bybit refuses it; an order that would hold both sides at once is refused (not
  simulated).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .accounts import TAKER_FEE, Account, Order
from .checks import (
    LINK_RE,
    check_position_idx,
    check_price,
    check_qty,
    order_stops,
    protection_tick,
)
from .errors import VenueError
from .fills import ZERO, Changes
from .market import PublicTrade
from .params import opt_bool, opt_decimal, opt_int, opt_str, req_decimal, req_str
from .stops import ProtectiveStops

__all__ = ["Changes", "Matcher"]


class Matcher(ProtectiveStops):
    """Order operations and fills for all accounts, against the market's books.

    The layers, one module each: ``fills.MatchingCore`` (state, taking liquidity, booking
    fills), ``stops.ProtectiveStops`` (position stops), and this class (the operations a
    request or the market asks for)."""

    # ---------------------------------------------------------------- orders
    def create_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/create``: validate, accept, match; the order is returned."""
        spec = self._spec(req_str(params, "symbol"))
        side = req_str(params, "side")
        if side not in ("Buy", "Sell"):
            raise VenueError(10001, f"params error: side invalid: {side}")
        order_type = req_str(params, "orderType")
        if order_type not in ("Market", "Limit"):
            raise VenueError(10001, f"params error: orderType invalid: {order_type}")
        tif = opt_str(params, "timeInForce") or "GTC"
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise VenueError(10001, f"params error: timeInForce invalid: {tif}")
        if order_type == "Market":
            tif = "IOC"
        position_idx = opt_int(params, "positionIdx", 0, 0, 2)
        check_position_idx(account, position_idx)
        qty = req_decimal(params, "qty")
        reduce_only = opt_bool(params, "reduceOnly")
        if account.hedge_mode and (side == "Buy") != (position_idx == 1):
            # hedge mode: selling the buy side (or buying the sell side) closes it
            reduce_only = True
        close_on_trigger = opt_bool(params, "closeOnTrigger")
        link = opt_str(params, "orderLinkId") or ""
        if link and not LINK_RE.fullmatch(link):
            raise VenueError(10001, "params error: orderLinkId must be 1-36 chars of [A-Za-z0-9_-]")
        if link and link in account.by_link:
            raise VenueError(110072, "OrderLinkedID is duplicate")
        sm = self.sm(spec.symbol)
        pos = account.position(spec.symbol)
        if qty == 0 and reduce_only and close_on_trigger and pos.size != 0:
            qty = abs(pos.size)  # Bybit: qty "0" + reduceOnly + closeOnTrigger closes it all
        check_qty(spec, qty, market=order_type == "Market")
        if order_type == "Limit":
            price = req_decimal(params, "price")
            check_price(spec, price)
            ref_price = price
        else:
            opt_decimal(params, "price")  # checked for its type, then ignored (as Bybit does)
            price = spec.price_of(protection_tick(sm, side))
            ref_price = spec.price_of(sm.last_tick)
        sign = 1 if side == "Buy" else -1
        if account.hedge_mode and not reduce_only and pos.size * sign < 0:
            raise VenueError(
                10001,
                "params error: the simulator's hedge mode holds one side per symbol: close the "
                "other side first",
            )
        stops = order_stops(params, side, order_type, price, reduce_only, sm)
        if reduce_only:
            if pos.size == 0 or pos.size * sign > 0:
                raise VenueError(
                    110017, "Reduce-only rule not satisfied: the order would not reduce a position"
                )
            qty = min(qty, abs(pos.size))
        else:
            if qty * ref_price < spec.min_notional:
                raise VenueError(
                    110094, f"Order does not meet minimum order value {spec.min_notional}USDT"
                )
            grow = qty if pos.size * sign >= 0 else max(ZERO, qty - abs(pos.size))
            if grow > 0:
                need = grow * ref_price / pos.leverage + grow * ref_price * TAKER_FEE
                available = account.figures(self.marks())["available"]
                if need > available:
                    raise VenueError(110007, "ab not enough for new order")
        now = self.now_ms()
        order = Order(
            order_id=self._new_id(),
            order_link_id=link,
            symbol=spec.symbol,
            side=side,
            order_type=order_type,
            time_in_force=tif,
            price=price,
            qty=qty,
            reduce_only=reduce_only,
            close_on_trigger=close_on_trigger,
            created_ms=now,
            updated_ms=now,
            last_price_on_created=spec.price_str(sm.last_tick),
            take_profit=stops[0],
            stop_loss=stops[1],
            tp_trigger_by=stops[2],
            sl_trigger_by=stops[3],
            position_idx=position_idx,
        )
        self._accept(account, order)
        self._match_new(account, order, spec, now)
        self._flush(now)
        return order

    def fill_resting(self, symbol: str, trades: list[PublicTrade], now: int) -> None:
        """Fill resting orders the market reached: crossed or traded through (fully), or
        traded at their price (up to the volume printed there, shared in time order)."""
        spec = self.specs[symbol]
        book = self.sm(symbol).book
        left = [t.lots for t in trades]  # volume at the touch not yet given to an order
        for account, order in list(self.resting[symbol].values()):
            if not order.is_open:
                continue
            limit = self._tick(spec, order.price)
            want = int(order.leaves_qty / spec.qty_step)
            buy = order.side == "Buy"
            crossed = (
                book.has_asks and book.ask_top <= limit
                if buy
                else book.has_bids and book.bid_top >= limit
            )
            if crossed:  # the other side of the book moved across our price
                lots = want
            else:
                lots = 0
                taker = "Sell" if buy else "Buy"
                for i, trade in enumerate(trades):
                    if trade.side != taker:
                        continue
                    if (trade.tick < limit) if buy else (trade.tick > limit):
                        lots = want  # the market traded through our price
                        break
                    if trade.tick == limit and left[i] > 0:
                        take = min(want - lots, left[i])
                        left[i] -= take
                        lots += take
                        if lots >= want:
                            break
            if lots > 0:
                self._fill(account, order, order.price, spec.qty_of(lots), maker=True, now=now)

    def amend_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/amend``: change qty and/or price of an open order."""
        spec = self._spec(req_str(params, "symbol"))
        order = self._find(account, params)
        if order is None or not order.is_open or order.symbol != spec.symbol:
            raise VenueError(110001, "order not exists or too late to replace")
        qty = opt_decimal(params, "qty")
        price = opt_decimal(params, "price")
        if qty is None and price is None:
            raise VenueError(10001, "params error: nothing to amend (give qty or price)")
        if qty is not None:
            check_qty(spec, qty, market=False)
            if qty <= order.cum_qty:
                raise VenueError(
                    110064,
                    "The modified contract quantity cannot be less than or "
                    "equal to the filled quantity",
                )
        if price is not None:
            if order.order_type == "Market":
                raise VenueError(10001, "params error: cannot amend the price of a market order")
            check_price(spec, price)
        if (qty is None or qty == order.qty) and (price is None or price == order.price):
            raise VenueError(
                10001,
                "The order remains unchanged as the parameters entered match the existing ones.",
            )
        now = self.now_ms()
        if qty is not None:
            order.qty = qty
        if price is not None:
            order.price = price
        order.updated_ms = now
        self.resting[order.symbol].pop(order.order_id, None)
        self._batch(account).orders[order.order_id] = order
        self._batch(account).positions.add(order.symbol)
        self._match_new(account, order, spec, now)
        self._flush(now)
        return order

    def cancel_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/cancel`` (orderId wins over orderLinkId)."""
        spec = self._spec(req_str(params, "symbol"))
        order = self._find(account, params)
        if order is None or not order.is_open or order.symbol != spec.symbol:
            raise VenueError(110001, "order not exists or too late to cancel")
        now = self.now_ms()
        self._cancel(account, order, now, cancel_type="CancelByUser", reason="EC_PerCancelRequest")
        self._flush(now)
        return order

    def cancel_all(self, account: Account, params: dict[str, Any]) -> list[Order]:
        """``POST /v5/order/cancel-all`` by symbol, baseCoin or settleCoin."""
        symbol = opt_str(params, "symbol")
        base = opt_str(params, "baseCoin")
        settle = opt_str(params, "settleCoin")
        if symbol is not None:
            self._spec(symbol)
            match: Callable[[Order], bool] = lambda o: o.symbol == symbol  # noqa: E731
        elif base is not None:
            match = lambda o: self.specs[o.symbol].base == base  # noqa: E731
        elif settle is not None:
            if settle != "USDT":
                return []
            match = lambda o: True  # noqa: E731
        else:
            raise VenueError(
                10001, "params error: symbol, baseCoin or settleCoin is required for linear"
            )
        if opt_str(params, "orderFilter") == "StopOrder":
            return []
        now = self.now_ms()
        cancelled = [o for o in list(account.open_orders.values()) if match(o)]
        for order in cancelled:
            self._cancel(
                account, order, now, cancel_type="CancelByUser", reason="EC_PerCancelRequest"
            )
        self._flush(now)
        return cancelled

    def set_leverage(self, account: Account, params: dict[str, Any]) -> None:
        """``POST /v5/position/set-leverage`` (one-way: buy == sell; 110043 when unchanged)."""
        spec = self._spec(req_str(params, "symbol"))
        buy = req_decimal(params, "buyLeverage")
        sell = req_decimal(params, "sellLeverage")
        if buy != sell:
            raise VenueError(
                10001, "params error: buyLeverage must equal sellLeverage in one-way mode"
            )
        if not Decimal(1) <= buy <= spec.max_leverage:
            raise VenueError(
                10001, f"params error: leverage must be between 1 and {spec.max_leverage}"
            )
        if (buy / Decimal("0.01")) % 1 != 0:
            raise VenueError(10001, "params error: leverage step is 0.01")
        pos = account.position(spec.symbol)
        if pos.leverage == buy:
            raise VenueError(110043, "Set leverage not modified")
        pos.leverage = buy.quantize(Decimal("0.01")).normalize()
        pos.updated_ms = self.now_ms()
        self._batch(account).positions.add(spec.symbol)
        self._flush(self.now_ms())

    def close_position(self, symbol: str) -> int:
        """Flatten every account's position in ``symbol`` at market, from outside the bot."""
        spec = self._spec(symbol)
        now = self.now_ms()
        closed = 0
        for account in self.accounts.values():
            pos = account.positions.get(spec.symbol)
            if pos is None or pos.size == 0:
                continue
            side = "Sell" if pos.size > 0 else "Buy"
            params = {
                "symbol": spec.symbol,
                "side": side,
                "orderType": "Market",
                "qty": format(abs(pos.size), "f"),
                "reduceOnly": True,
                "positionIdx": (1 if pos.size > 0 else 2) if account.hedge_mode else 0,
            }
            order = self.create_order(account, params)
            if pos.size != 0:
                # the book was too thin: settle the rest at the mark, like a liquidation
                self._fill(
                    account, order, self.mark(spec.symbol), abs(pos.size), maker=False, now=now
                )
                self._flush(now)
            closed += 1
        return closed
