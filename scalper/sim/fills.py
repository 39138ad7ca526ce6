"""The matcher's core: validation, matching a new order, fills, fees, the books kept.

``MatchingCore`` holds the accounts, the resting orders and what changed per account,
and the steps every order operation is made of (``sim.matching.Matcher`` carries out
the operations; its docstring has the matching rules).
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
from .params import opt_decimal, opt_str
from .specs import SymbolSpec

__all__ = [
    "LINK_RE",
    "PROTECTION",
    "TRIGGERS",
    "ZERO",
    "Changes",
    "MatchingCore",
    "check_stop_side",
    "check_tpsl_mode",
    "protection_tick",
    "trigger_param",
]

LINK_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
#: market orders become limit orders this far through the touch (protection price)
PROTECTION = 0.03
ZERO = Decimal(0)


@attrs.define(slots=True)
class Changes:
    """What operations changed for one account since the last push."""

    orders: dict[str, Order] = attrs.field(factory=dict)
    executions: list[Execution] = attrs.field(factory=list)
    positions: set[str] = attrs.field(factory=set)


class MatchingCore:
    """State and shared steps of the matcher, for every account of the venue."""

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
        check_tpsl_mode(params)
        tp_by = trigger_param(params, "tpTriggerBy")
        sl_by = trigger_param(params, "slTriggerBy")
        pos_side = side  # the position this order opens
        for name, value, by in (("TakeProfit", tp, tp_by), ("StopLoss", sl, sl_by)):
            if value is None:
                continue
            self._check_stop_price(spec, name, value)
            base = price if order_type == "Limit" else self._trigger_price(sm, by)
            check_stop_side(name, value, pos_side, base, by)
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
            qty = min(qty, abs(pos.size)) if pos.size * order.sign < 0 else ZERO
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
        order.closed_pnl += pnl - fee if closed else ZERO
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
            pos.open_fee = ZERO
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

    def _find(self, account: Account, params: dict[str, Any]) -> Order | None:
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        if order_id is None and link is None:
            raise VenueError(10001, "params error: orderId or orderLinkId is required")
        if order_id is not None:
            return account.orders.get(order_id)
        assert link is not None
        return account.by_link.get(link)

    def _batch(self, account: Account) -> Changes:
        batch = self.changes.get(account.api_key)
        if batch is None:
            batch = self.changes[account.api_key] = Changes()
        return batch


TRIGGERS = ("LastPrice", "MarkPrice", "IndexPrice")


def trigger_param(params: dict[str, Any], key: str, default: str = "LastPrice") -> str:
    """``slTriggerBy`` / ``tpTriggerBy`` (Bybit's default: LastPrice)."""
    value = opt_str(params, key) or default
    if value not in TRIGGERS:
        raise VenueError(10001, f"params error: {key} invalid: {value}")
    return value


def _e8(value: Decimal) -> int:
    """A price as Bybit's engine prints it in its messages: scaled by 1e8."""
    return int(value.scaleb(8))


def check_stop_side(name: str, value: Decimal, side: str, base: Decimal, by: str) -> None:
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


def check_tpsl_mode(params: dict[str, Any]) -> None:
    """Only ``tpslMode=Full`` with market stop orders is simulated; others are refused."""
    mode = opt_str(params, "tpslMode") or "Full"
    if mode != "Full":
        raise VenueError(10001, f"params error: tpslMode {mode} is not supported here (Full)")
    for key in ("tpOrderType", "slOrderType"):
        kind = opt_str(params, key) or "Market"
        if kind != "Market":
            raise VenueError(10001, f"params error: {key} {kind} is not supported (Market)")


def protection_tick(sm: SymbolMarket, side: str) -> int:
    """A market order's limit: ``PROTECTION`` through the touch (the last trade if empty)."""
    book = sm.book
    if side == "Buy":
        top = book.ask_top if book.has_asks else sm.last_tick
        return math.ceil(top * (1 + PROTECTION))
    top = book.bid_top if book.has_bids else sm.last_tick
    return max(1, math.floor(top * (1 - PROTECTION)))
