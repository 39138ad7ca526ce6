"""The matcher's core: matching a new order, taking liquidity, fills, fees, the books kept.

``MatchingCore`` holds the accounts, the resting orders and what changed per account,
and the steps every order operation is made of: accept an order, take from the book,
rest, cancel, book a fill (position, wallet, closed-PnL record). ``sim.matching.Matcher``
carries out the operations (its docstring has the matching rules); the checks of the
parameters are ``sim.checks``.
"""

from __future__ import annotations

import random
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
from .params import opt_str
from .specs import SymbolSpec

__all__ = ["ZERO", "Changes", "MatchingCore"]

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
        if crosses:
            self._take(account, order, limit, now)
        if order.is_open:
            if order.order_type == "Market" or order.time_in_force in ("IOC", "FOK"):
                reason = "EC_NoError" if order.cum_qty else "EC_NoImmediateQtyToFill"
                self._cancel(account, order, now, cancel_type="UNKNOWN", reason=reason)
            else:
                self._rest(account, order)

    def _take(self, account: Account, order: Order, limit: int, now: int) -> None:
        """Take what ``order`` can from the book up to the ``limit`` tick, best level
        first: each level taken prints a trade and books a taker fill; the walk stops once
        the order is done."""
        spec = self.specs[order.symbol]
        sm = self.sm(order.symbol)
        book = sm.book
        lots = int(order.leaves_qty / spec.qty_step)
        buy = order.side == "Buy"
        fills = book.take_asks(lots, limit) if buy else book.take_bids(lots, limit)
        for tick, taken in fills:
            trade = self.market.record_trade(
                sm, tick, taken, order.side, now, self.market.new_trade_id()
            )
            self.trades.setdefault(order.symbol, []).append(trade)
            self._fill(
                account, order, spec.price_of(tick), spec.qty_of(taken), maker=False, now=now
            )
            if not order.is_open:
                break
        if fills:
            book.u += 1

    def _accept(self, account: Account, order: Order) -> None:
        """Register a new order as open on its account (the next push carries it)."""
        account.orders[order.order_id] = order
        if order.order_link_id:
            account.by_link[order.order_link_id] = order
        account.open_orders[order.order_id] = order
        self._batch(account).positions.add(order.symbol)

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
