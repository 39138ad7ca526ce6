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
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from .accounts import MAKER_FEE, TAKER_FEE, Account, Execution, Order
from .errors import VenueError
from .market import Market, PublicTrade, SymbolMarket
from .params import opt_bool, opt_decimal, opt_int, opt_str, req_decimal, req_str
from .specs import SymbolSpec

__all__ = ["Changes", "Matcher"]

_LINK_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
#: market orders become limit orders this far through the touch (protection price)
_PROTECTION = 0.03
_ZERO = Decimal(0)


@attrs.define(slots=True)
class Changes:
    """What operations changed for one account since the last push."""

    orders: dict[str, Order] = attrs.field(factory=dict)
    executions: list[Execution] = attrs.field(factory=list)
    positions: set[str] = attrs.field(factory=set)


class Matcher:
    """Order operations and fills for all accounts, against the market's books."""

    def __init__(
        self,
        market: Market,
        accounts: dict[str, Account],
        *,
        seed: int,
        clock: Callable[[], int],
        flush: Callable[[int], None],
    ) -> None:
        self.market = market
        self.specs = {sm.spec.symbol: sm.spec for sm in market.symbols.values()}
        self.accounts = accounts
        self.clock = clock
        #: pushes what changed; called at the end of every operation
        self._flush = flush
        self._ids = random.Random(seed * 7919 + 17)
        #: resting orders per symbol, by order id
        self.resting: dict[str, dict[str, tuple[Account, Order]]] = {s: {} for s in self.specs}
        #: per api key, what changed since the last push
        self.changes: dict[str, Changes] = {}
        #: trades our takers printed, per symbol, not yet published
        self.trades: dict[str, list[PublicTrade]] = {}

    def now_ms(self) -> int:
        """The venue's clock (ms)."""
        return self.clock()

    def sm(self, symbol: str) -> SymbolMarket:
        """The market state of a listed symbol."""
        return self.market.symbols[symbol]

    def mark(self, symbol: str) -> Decimal:
        """Mark price of ``symbol``."""
        sm = self.market.symbols[symbol]
        return sm.spec.price_of(sm.mark_tick)

    def marks(self) -> dict[str, Decimal]:
        """Mark prices of every symbol."""
        return {s: self.mark(s) for s in self.specs}

    def _spec(self, symbol: str | None) -> SymbolSpec:
        if symbol is None:
            raise VenueError(10001, "params error: symbol is required")
        spec = self.specs.get(symbol)
        if spec is None:
            raise VenueError(10001, f"params error: symbol invalid: {symbol}")
        return spec

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

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
        if position_idx != 0:
            raise VenueError(10001, "params error: position idx not match position mode")
        qty = req_decimal(params, "qty")
        reduce_only = opt_bool(params, "reduceOnly")
        close_on_trigger = opt_bool(params, "closeOnTrigger")
        link = opt_str(params, "orderLinkId") or ""
        if link and not _LINK_RE.fullmatch(link):
            raise VenueError(10001, "params error: orderLinkId must be 1-36 chars of [A-Za-z0-9_-]")
        if link and link in account.by_link:
            raise VenueError(110072, "OrderLinkedID is duplicate")
        sm = self.sm(spec.symbol)
        book = sm.book
        pos = account.position(spec.symbol)
        if qty == 0 and reduce_only and close_on_trigger and pos.size != 0:
            qty = abs(pos.size)  # Bybit: qty "0" + reduceOnly + closeOnTrigger closes it all
        self._check_qty(spec, qty, market=order_type == "Market")
        if order_type == "Limit":
            price = req_decimal(params, "price")
            self._check_price(spec, price)
            ref_price = price
        else:
            opt_decimal(params, "price")  # checked for its type, then ignored (as Bybit does)
            if side == "Buy":
                top = book.ask_top if book.has_asks else sm.last_tick
                tick = math.ceil(top * (1 + _PROTECTION))
            else:
                top = book.bid_top if book.has_bids else sm.last_tick
                tick = max(1, math.floor(top * (1 - _PROTECTION)))
            price = spec.price_of(tick)
            ref_price = spec.price_of(sm.last_tick)
        sign = 1 if side == "Buy" else -1
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
            grow = qty if pos.size * sign >= 0 else max(_ZERO, qty - abs(pos.size))
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
            take_profit=opt_str(params, "takeProfit") or "",
            stop_loss=opt_str(params, "stopLoss") or "",
        )
        account.orders[order.order_id] = order
        if link:
            account.by_link[link] = order
        account.open_orders[order.order_id] = order
        self._batch(account).positions.add(spec.symbol)
        self._match_new(account, order, spec, now)
        self._flush(now)
        return order

    def _check_qty(self, spec: SymbolSpec, qty: Decimal, *, market: bool) -> None:
        if qty <= 0:
            raise VenueError(10001, f"params error: qty must be positive, got {qty}")
        if qty % spec.qty_step != 0:
            raise VenueError(
                10001,
                f"params error: Qty invalid: {qty} is not a multiple of qtyStep {spec.qty_step}",
            )
        if qty < spec.min_qty:
            raise VenueError(
                10001,
                f"The number of contracts below min limit allowed: qty {qty} < minOrderQty "
                f"{spec.min_qty}",
            )
        cap = spec.max_mkt_qty if market else spec.max_qty
        if qty > cap:
            which = "maxMktOrderQty" if market else "maxOrderQty"
            raise VenueError(
                10001,
                f"The number of contracts exceeds maximum limit allowed: qty {qty} > {which} {cap}",
            )

    def _check_price(self, spec: SymbolSpec, price: Decimal) -> None:
        if price <= 0:
            raise VenueError(10001, f"params error: price must be positive, got {price}")
        if price % spec.tick_size != 0:
            raise VenueError(
                10001,
                f"params error: Price invalid: {price} is not a multiple of tickSize "
                f"{spec.tick_size}",
            )

    def _tick(self, spec: SymbolSpec, price: Decimal) -> int:
        return int(price / spec.tick_size)

    def _match_new(self, account: Account, order: Order, spec: SymbolSpec, now: int) -> None:
        """Take liquidity for a new (or amended) order; rest or cancel what is left."""
        book = self.sm(spec.symbol).book
        limit = self._tick(spec, order.price)
        buy = order.side == "Buy"
        crosses = (
            (book.has_asks and book.ask_top <= limit)
            if buy
            else (book.has_bids and book.bid_top >= limit)
        )
        if order.time_in_force == "PostOnly":
            if crosses:
                self._cancel(
                    account,
                    order,
                    now,
                    cancel_type="UNKNOWN",
                    reason="EC_PostOnlyWillTakeLiquidity",
                )
            else:
                self._rest(account, order)
            return
        lots = int(order.leaves_qty / spec.qty_step)
        if order.time_in_force == "FOK":
            have = book.available_asks(limit) if buy else book.available_bids(limit)
            if have < lots:
                self._cancel(
                    account, order, now, cancel_type="UNKNOWN", reason="EC_NoImmediateQtyToFill"
                )
                return
        if crosses and lots > 0:
            fills = book.take_asks(lots, limit) if buy else book.take_bids(lots, limit)
            sm = self.sm(spec.symbol)
            for tick, taken in fills:
                trade = self.market.record_trade(
                    sm, tick, taken, order.side, now, self.market.new_trade_id()
                )
                self.trades.setdefault(spec.symbol, []).append(trade)
                self._fill(
                    account, order, spec.price_of(tick), spec.qty_of(taken), maker=False, now=now
                )
                if not order.is_open:
                    break
            book.u += 1
        if order.is_open:
            if order.order_type == "Market" or order.time_in_force in ("IOC", "FOK"):
                reason = "EC_NoError" if order.cum_qty else "EC_NoImmediateQtyToFill"
                self._cancel(account, order, now, cancel_type="UNKNOWN", reason=reason)
            else:
                self._rest(account, order)

    def _rest(self, account: Account, order: Order) -> None:
        self.resting[order.symbol][order.order_id] = (account, order)
        self._batch(account).orders[order.order_id] = order

    def _cancel(
        self, account: Account, order: Order, now: int, *, cancel_type: str, reason: str
    ) -> None:
        order.status = "Cancelled"
        order.cancel_type = cancel_type
        order.reject_reason = reason
        order.updated_ms = now
        account.close(order)
        self.resting[order.symbol].pop(order.order_id, None)
        batch = self._batch(account)
        batch.orders[order.order_id] = order
        batch.positions.add(order.symbol)

    def _fill(
        self, account: Account, order: Order, price: Decimal, qty: Decimal, *, maker: bool, now: int
    ) -> None:
        """Book one fill: order, position, wallet, execution record."""
        pos = account.position(order.symbol)
        if order.reduce_only:
            qty = min(qty, abs(pos.size)) if pos.size * order.sign < 0 else _ZERO
            if qty <= 0:
                self._cancel(
                    account, order, now, cancel_type="CancelByReduceOnly", reason="EC_NoError"
                )
                return
        rate = MAKER_FEE if maker else TAKER_FEE
        fee = price * qty * rate
        if pos.size == 0:
            pos.created_ms = now
        closed, pnl = pos.apply_fill(order.sign * qty, price, fee)
        pos.updated_ms = now
        pos.seq = self.market.seq
        account.balance += pnl - fee
        account.cum_realised += pnl - fee
        order.cum_qty += qty
        order.cum_value += price * qty
        order.cum_fee += fee
        order.closed_pnl += pnl - fee if closed else _ZERO
        order.updated_ms = now
        order.status = "Filled" if order.cum_qty >= order.qty else "PartiallyFilled"
        spec = self.specs[order.symbol]
        execution = Execution(
            exec_id=self._new_id(),
            order=order,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            is_maker=maker,
            exec_ms=now,
            closed_size=closed,
            exec_pnl=pnl,
            mark_price=spec.price_str(self.sm(order.symbol).mark_tick),
            leaves_qty=order.qty - order.cum_qty,
            seq=self.market.seq,
        )
        account.executions.append(execution)
        batch = self._batch(account)
        batch.orders[order.order_id] = order
        batch.executions.append(execution)
        batch.positions.add(order.symbol)
        if not order.is_open:
            account.close(order)
            self.resting[order.symbol].pop(order.order_id, None)
        if pos.size == 0:  # flat: reduce-only orders left have nothing to reduce
            for other in list(account.open_orders.values()):
                if other.symbol == order.symbol and other.reduce_only and other is not order:
                    self._cancel(
                        account, other, now, cancel_type="CancelByReduceOnly", reason="EC_NoError"
                    )

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

    def _find(self, account: Account, params: dict[str, Any]) -> Order | None:
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        if order_id is None and link is None:
            raise VenueError(10001, "params error: orderId or orderLinkId is required")
        if order_id is not None:
            return account.orders.get(order_id)
        assert link is not None
        return account.by_link.get(link)

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
            self._check_qty(spec, qty, market=False)
            if qty <= order.cum_qty:
                raise VenueError(
                    110064,
                    "The modified contract quantity cannot be less than or "
                    "equal to the filled quantity",
                )
        if price is not None:
            if order.order_type == "Market":
                raise VenueError(10001, "params error: cannot amend the price of a market order")
            self._check_price(spec, price)
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

    def _batch(self, account: Account) -> Changes:
        batch = self.changes.get(account.api_key)
        if batch is None:
            batch = self.changes[account.api_key] = Changes()
        return batch
