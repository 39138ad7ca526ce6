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
* Protective stops (``tpslMode=Full``), as reference section 8 describes: a
  ``stopLoss`` / ``takeProfit`` on an opening order is armed on the position when the
  order fills; ``set_trading_stop`` arms, moves ("0": removes) them later. A long's
  stop-loss must lie below the trigger base price (mark or last, per ``slTriggerBy``)
  and its take-profit above, the reverse for a short (10001 naming side and base
  price); a flat position is refused; the same values again answer 34040. On every
  market step ``check_stops`` fires a stop whose trigger price was crossed: a
  reduce-only, close-on-trigger market order of the whole position with orderLinkId "",
  ``stopOrderType`` StopLoss/TakeProfit and ``createType`` CreateByStopLoss /
  CreateByTakeProfit. Whatever closes a position cancels its stops.
* Every order that closes some of a position gets a closed-PnL record, net of its
  closing fee and of the opening fees of the closed quantity (pro rata).
* Hedge mode (an account option) is modelled on one net position per symbol: an order
  or trading-stop must carry positionIdx 1 (buy side) or 2 (sell side), 0 is refused as
  Bybit refuses it; an order that would hold both sides at once is refused (not
  simulated).
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

from .accounts import (
    MAKER_FEE,
    TAKER_FEE,
    Account,
    ClosedPnlRecord,
    Execution,
    Order,
    Position,
)
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
        self._check_position_idx(account, position_idx)
        qty = req_decimal(params, "qty")
        reduce_only = opt_bool(params, "reduceOnly")
        if account.hedge_mode and (side == "Buy") != (position_idx == 1):
            # hedge mode: selling the buy side (or buying the sell side) closes it
            reduce_only = True
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
        if account.hedge_mode and not reduce_only and pos.size * sign < 0:
            raise VenueError(
                10001,
                "params error: the simulator's hedge mode holds one side per symbol: close the "
                "other side first",
            )
        stops = self._order_stops(params, side, order_type, price, reduce_only, spec, sm)
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
            take_profit=stops[0],
            stop_loss=stops[1],
            tp_trigger_by=stops[2],
            sl_trigger_by=stops[3],
            position_idx=position_idx,
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

    def _check_position_idx(self, account: Account, idx: int) -> None:
        """positionIdx 0 in one-way mode, 1 or 2 in hedge mode (Bybit's 10001 otherwise)."""
        if (idx == 0) == account.hedge_mode:
            raise VenueError(10001, "position idx not match position mode")

    def _order_stops(
        self,
        params: dict[str, Any],
        side: str,
        order_type: str,
        price: Decimal,
        reduce_only: bool,
        spec: SymbolSpec,
        sm: SymbolMarket,
    ) -> tuple[str, str, str, str]:
        """The TP/SL an order create carries: (takeProfit, stopLoss, tpTriggerBy,
        slTriggerBy) as strings, "" when absent. Checked like Bybit: not with
        reduceOnly, Full mode and market stop orders only, on the right side of the base
        price (the limit price; for a market order the trigger price now)."""
        tp = opt_decimal(params, "takeProfit")
        sl = opt_decimal(params, "stopLoss")
        tp = None if tp == 0 else tp
        sl = None if sl == 0 else sl
        if tp is None and sl is None:
            return "", "", "", ""
        if reduce_only:
            raise VenueError(10001, "params error: TP/SL cannot be set on a reduce-only order")
        mode = opt_str(params, "tpslMode") or "Full"
        if mode != "Full":
            raise VenueError(10001, f"params error: tpslMode {mode} is not supported here (Full)")
        for key in ("tpOrderType", "slOrderType"):
            kind = opt_str(params, key) or "Market"
            if kind != "Market":
                raise VenueError(10001, f"params error: {key} {kind} is not supported (Market)")
        tp_by = _trigger_by(params, "tpTriggerBy")
        sl_by = _trigger_by(params, "slTriggerBy")
        pos_side = side  # the position this order opens
        for name, value, by in (("TakeProfit", tp, tp_by), ("StopLoss", sl, sl_by)):
            if value is None:
                continue
            self._check_stop_price(spec, name, value)
            base = price if order_type == "Limit" else self._trigger_price(sm, by)
            _check_side(name, value, pos_side, base, by)
        return (
            "" if tp is None else _plain(tp),
            "" if sl is None else _plain(sl),
            tp_by if tp is not None else "",
            sl_by if sl is not None else "",
        )

    def _check_stop_price(self, spec: SymbolSpec, name: str, value: Decimal) -> None:
        if value < 0:
            raise VenueError(10001, f"params error: {name} must not be negative, got {value}")
        if value % spec.tick_size != 0:
            raise VenueError(
                10001,
                f"params error: {name} invalid: {value} is not a multiple of tickSize "
                f"{spec.tick_size}",
            )

    def _trigger_price(self, sm: SymbolMarket, trigger_by: str) -> Decimal:
        """The price a stop with this trigger compares against (IndexPrice: the mark's
        index-like value, the simulator has no separate index)."""
        tick = sm.last_tick if trigger_by == "LastPrice" else sm.mark_tick
        return sm.spec.price_of(tick)

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
        size_before = pos.size
        entry_before = pos.avg_price
        closed, pnl = pos.apply_fill(order.sign * qty, price, fee)
        pos.updated_ms = now
        self._book_fees(
            account, order, pos, size_before, entry_before, closed, pnl, price, qty, fee, now
        )
        if closed and (pos.size == 0 or pos.size * size_before < 0):
            pos.clear_stops()  # Full-mode stops go with the position they protected
        if (
            not order.reduce_only
            and pos.size * order.sign > 0
            and (order.stop_loss or order.take_profit)
        ):
            self._arm_from_order(pos, order)
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

    def _book_fees(
        self,
        account: Account,
        order: Order,
        pos: Position,
        size_before: Decimal,
        entry_before: Decimal,
        closed: Decimal,
        pnl: Decimal,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        now: int,
    ) -> None:
        """Keep the position's unallocated opening fees, and the closing order's
        closed-PnL record (net of its closing fee and of the closed part's opening fee)."""
        if not closed:
            pos.open_fee += fee
            return
        share = pos.open_fee * closed / abs(size_before)
        close_fee = fee * closed / qty
        pos.open_fee -= share
        if pos.size == 0:
            pos.open_fee = _ZERO
        elif pos.size * size_before < 0:  # flipped: the rest of this fill opened it
            pos.open_fee = fee - close_fee
        record = account.closed_pnl.get(order.order_id)
        if record is None:
            record = account.closed_pnl[order.order_id] = ClosedPnlRecord(
                order=order,
                exec_type="Trade",
                leverage=pos.leverage,
                created_ms=order.created_ms,
            )
        record.closed_size += closed
        record.entry_value += closed * entry_before
        record.exit_value += closed * price
        record.net += pnl - close_fee - share
        record.fill_count += 1
        record.updated_ms = now

    def _arm_from_order(self, pos: Position, order: Order) -> None:
        """An opening order's TP/SL becomes the position's (Full mode)."""
        if order.stop_loss:
            pos.stop_loss = Decimal(order.stop_loss)
            pos.sl_trigger_by = order.sl_trigger_by or "LastPrice"
        if order.take_profit:
            pos.take_profit = Decimal(order.take_profit)
            pos.tp_trigger_by = order.tp_trigger_by or "LastPrice"

    # ---------------------------------------------------------------- stops
    def set_trading_stop(self, account: Account, params: dict[str, Any]) -> None:
        """``POST /v5/position/trading-stop``: arm, move or remove ("0") the Full-mode
        stop-loss / take-profit of a position (34040 when nothing changes)."""
        spec = self._spec(req_str(params, "symbol"))
        if "positionIdx" not in params:
            raise VenueError(10001, "params error: missing required parameter positionIdx")
        idx = opt_int(params, "positionIdx", 0, 0, 2)
        self._check_position_idx(account, idx)
        mode = opt_str(params, "tpslMode") or "Full"
        if mode != "Full":
            raise VenueError(10001, f"params error: tpslMode {mode} is not supported here (Full)")
        for key in ("tpOrderType", "slOrderType"):
            kind = opt_str(params, key) or "Market"
            if kind != "Market":
                raise VenueError(10001, f"params error: {key} {kind} is not supported (Market)")
        trailing = opt_decimal(params, "trailingStop")
        if trailing:
            raise VenueError(10001, "params error: trailingStop is not supported by the simulator")
        pos = account.position(spec.symbol)
        held = pos.size != 0 and (not account.hedge_mode or (pos.size > 0) == (idx == 1))
        if not held:
            raise VenueError(10001, "can not set tp/sl/ts for zero position")
        sl = opt_decimal(params, "stopLoss")
        tp = opt_decimal(params, "takeProfit")
        sl_by = _trigger_by(params, "slTriggerBy", pos.sl_trigger_by)
        tp_by = _trigger_by(params, "tpTriggerBy", pos.tp_trigger_by)
        new_sl = pos.stop_loss if sl is None else sl
        new_tp = pos.take_profit if tp is None else tp
        sm = self.sm(spec.symbol)
        side = pos.side
        for name, value, given, by in (
            ("StopLoss", new_sl, sl, sl_by),
            ("TakeProfit", new_tp, tp, tp_by),
        ):
            if given is None or given == 0:
                continue
            self._check_stop_price(spec, name, given)
            _check_side(name, value, side, self._trigger_price(sm, by), by)
        if (new_sl, new_tp, sl_by, tp_by) == (
            pos.stop_loss,
            pos.take_profit,
            pos.sl_trigger_by,
            pos.tp_trigger_by,
        ):
            raise VenueError(34040, "not modified")
        pos.stop_loss, pos.take_profit = new_sl, new_tp
        pos.sl_trigger_by, pos.tp_trigger_by = sl_by, tp_by
        now = self.now_ms()
        pos.updated_ms = now
        pos.seq = self.market.seq
        self._batch(account).positions.add(spec.symbol)
        self._flush(now)

    def check_stops(self, symbol: str, now: int) -> None:
        """Fire every armed stop on ``symbol`` whose trigger price has been crossed."""
        sm = self.sm(symbol)
        for account in self.accounts.values():
            pos = account.positions.get(symbol)
            if pos is None or pos.size == 0 or not (pos.stop_loss or pos.take_profit):
                continue
            long = pos.size > 0
            fired: tuple[str, Decimal, str] | None = None
            if pos.stop_loss:
                px = self._trigger_price(sm, pos.sl_trigger_by)
                if (px <= pos.stop_loss) if long else (px >= pos.stop_loss):
                    fired = ("StopLoss", pos.stop_loss, pos.sl_trigger_by)
            if fired is None and pos.take_profit:
                px = self._trigger_price(sm, pos.tp_trigger_by)
                if (px >= pos.take_profit) if long else (px <= pos.take_profit):
                    fired = ("TakeProfit", pos.take_profit, pos.tp_trigger_by)
            if fired is not None:
                self._fire(account, pos, *fired, now=now)

    def _fire(
        self, account: Account, pos: Position, kind: str, trigger: Decimal, by: str, *, now: int
    ) -> None:
        """A triggered stop: a reduce-only market close of the whole position."""
        spec = self.specs[pos.symbol]
        sm = self.sm(pos.symbol)
        long = pos.size > 0
        side = "Sell" if long else "Buy"
        book = sm.book
        if side == "Buy":
            top = book.ask_top if book.has_asks else sm.last_tick
            tick = math.ceil(top * (1 + _PROTECTION))
        else:
            top = book.bid_top if book.has_bids else sm.last_tick
            tick = max(1, math.floor(top * (1 - _PROTECTION)))
        # falling through a long's stop-loss (or a short's take-profit) is direction 2
        falling = long == (kind == "StopLoss")
        order = Order(
            order_id=self._new_id(),
            order_link_id="",
            symbol=pos.symbol,
            side=side,
            order_type="Market",
            time_in_force="IOC",
            price=spec.price_of(tick),
            qty=abs(pos.size),
            reduce_only=True,
            close_on_trigger=True,
            created_ms=now,
            updated_ms=now,
            last_price_on_created=spec.price_str(sm.last_tick),
            stop_order_type=kind,
            create_type="CreateByStopLoss" if kind == "StopLoss" else "CreateByTakeProfit",
            trigger_price=trigger,
            trigger_by=by,
            trigger_direction=2 if falling else 1,
            position_idx=(1 if long else 2) if account.hedge_mode else 0,
        )
        pos.clear_stops()  # Full mode: the other stop is cancelled with this one
        account.orders[order.order_id] = order
        account.open_orders[order.order_id] = order
        self._batch(account).positions.add(pos.symbol)
        fills = (
            book.take_asks(int(order.qty / spec.qty_step), tick)
            if side == "Buy"
            else (book.take_bids(int(order.qty / spec.qty_step), tick))
        )
        for level, taken in fills:
            trade = self.market.record_trade(
                sm, level, taken, side, now, self.market.new_trade_id()
            )
            self.trades.setdefault(pos.symbol, []).append(trade)
            self._fill(account, order, spec.price_of(level), spec.qty_of(taken), maker=False,
                       now=now)  # fmt: skip
            if not order.is_open:
                break
        if fills:
            book.u += 1
        if order.is_open:
            # the book was too thin for the whole close: the rest at the mark (the
            # simulator's stand-in for Bybit's engine working the close through)
            self._fill(account, order, self.mark(pos.symbol), order.qty - order.cum_qty,
                       maker=False, now=now)  # fmt: skip

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

    def _batch(self, account: Account) -> Changes:
        batch = self.changes.get(account.api_key)
        if batch is None:
            batch = self.changes[account.api_key] = Changes()
        return batch


_TRIGGERS = ("LastPrice", "MarkPrice", "IndexPrice")


def _trigger_by(params: dict[str, Any], key: str, default: str = "LastPrice") -> str:
    """``slTriggerBy`` / ``tpTriggerBy`` (Bybit's default: LastPrice)."""
    value = opt_str(params, key) or default
    if value not in _TRIGGERS:
        raise VenueError(10001, f"params error: {key} invalid: {value}")
    return value


def _e8(value: Decimal) -> int:
    """A price as Bybit's engine prints it in its messages: scaled by 1e8."""
    return int(value.scaleb(8))


def _check_side(name: str, value: Decimal, side: str, base: Decimal, by: str) -> None:
    """Bybit's rule: a long's stop-loss below the base price and take-profit above it;
    the reverse for a short. The message is Bybit's (prices scaled by 1e8)."""
    if value == 0:
        return
    below = (name == "StopLoss") == (side == "Buy")
    if (value < base) if below else (value > base):
        return
    word = "lower" if below else "higher"
    raise VenueError(
        10001,
        f"{name}:{_e8(value)} set for {side} position should {word} than "
        f"base_price:{_e8(base)}??{by}",
    )


def _plain(value: Decimal) -> str:
    return format(value, "f")
