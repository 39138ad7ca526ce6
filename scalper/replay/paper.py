"""A tiny paper exchange that answers the engine's orders during a replay.

It is deliberately simple, and says so in every fill line, because its only job is to
let entries and exits *play out* so the transitions after them can be seen:

* **Market** orders (entries in a liquid book, every close) fill in full at once at
  the current touch: a buy at the best ask, a sell at the best bid (the last trade
  price when the book is empty). No depth walk, no slippage, no fees.
* **PostOnly limits** that would cross the book are rejected (Bybit's
  ``EC_PostOnlyWillTakeLiquidity``). Otherwise they rest, and fill in full at their own
  price once the market trades through them: the opposite touch reaches the price
  (best ask <= buy price, best bid >= sell price), or a public trade prints beyond it.
  A print *at* the price is not enough: the queue ahead of us is unknown.
* A resting order not filled within ``confirm_timeout_ms`` is cancelled, as the bot's
  execution task does, and reported as ``OrderFailed`` with nothing filled.
* **Reduce-only** orders never grow or flip the position; without a position they are
  rejected (Bybit's 110017).
* ``RequestPosition`` is answered at once with the position and the open orders, the
  two reads the bot's reconcile task makes.

PnL is gross (no fees): ``realised_pnl`` from closed quantity, ``unrealised(mark)``
for what is still open. Everything is Decimal; no clock is read (time is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from scalper.core.instrument import to_decimal
from scalper.core.model import (
    BookTop,
    Event,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderType,
    PositionSnapshot,
    Side,
    TimeInForce,
    Trade,
)

__all__ = ["PaperExchange", "PaperFill"]

_ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class PaperFill:
    """One paper execution (for the replay's output and summary)."""

    t: int
    order_link_id: str
    side: Side
    qty: Decimal
    price: Decimal
    reduce_only: bool
    maker: bool
    #: realised PnL this fill booked (0 for an opening fill)
    realised: Decimal


@attrs.define
class _Resting:
    intent: OrderIntent
    order_id: str
    placed_ms: int


class PaperExchange:
    """Paper fills for one symbol. Each method returns the events to feed the engine."""

    fill_label = "paper fill"

    def __init__(
        self,
        symbol: str,
        *,
        confirm_timeout_ms: int = 10_000,
        tick_size: Decimal | None = None,
    ) -> None:
        self.symbol = symbol
        #: touch prices are shown on this grid (``102.00``, not ``102.0``)
        self.tick_size = tick_size
        self.confirm_timeout_ms = confirm_timeout_ms
        #: signed position size (+ long, - short) and its average entry price
        self.size = _ZERO
        self.avg_price = _ZERO
        self.realised_pnl = _ZERO
        self.fills: list[PaperFill] = []
        self._resting: dict[str, _Resting] = {}
        self._orders = 0

    # ------------------------------------------------------------ reading

    @property
    def open_order_link_ids(self) -> tuple[str, ...]:
        """Client ids of the resting orders, oldest first."""
        return tuple(self._resting)

    def position(self) -> PositionSnapshot:
        """The position as Bybit's position read would report it."""
        if self.size == 0:
            return PositionSnapshot(symbol=self.symbol, side=None, size=_ZERO)
        return PositionSnapshot(
            symbol=self.symbol,
            side=Side.BUY if self.size > 0 else Side.SELL,
            size=abs(self.size),
            avg_price=self.avg_price,
            realised_pnl=self.realised_pnl,
        )

    def unrealised(self, mark: float | None) -> Decimal:
        """PnL of the open position marked at ``mark`` (0 when flat or no price)."""
        if self.size == 0 or mark is None:
            return _ZERO
        return (to_decimal(mark) - self.avg_price) * self.size

    def snapshot_events(self, symbol: str) -> list[Event]:
        """Answer to ``RequestPosition``: the position, then the open orders."""
        if symbol != self.symbol:
            return [
                PositionSnapshot(symbol=symbol, side=None, size=_ZERO),
                OpenOrders(symbol=symbol, order_link_ids=()),
            ]
        return [
            self.position(),
            OpenOrders(symbol=symbol, order_link_ids=self.open_order_link_ids),
        ]

    # ------------------------------------------------------------ orders

    def place(
        self, intent: OrderIntent, now_ms: int, top: BookTop | None, last_price: float | None
    ) -> list[Event]:
        """Accept (and maybe fill) one order; the outcome comes back as events."""
        self._orders += 1
        order_id = f"paper-{self._orders}"
        link_id = intent.order_link_id
        if intent.symbol != self.symbol:
            return [OrderFailed(order_link_id=link_id, reason=f"no market for {intent.symbol}")]
        if intent.reduce_only and self._reducible(intent.side) == 0:
            return [OrderFailed(order_link_id=link_id, reason="reduce-only: no position to reduce")]
        if intent.order_type is OrderType.MARKET:
            price = self._touch(intent.side, top, last_price)
            if price is None:
                return [OrderFailed(order_link_id=link_id, reason="no price to fill at")]
            accepted = OrderAccepted(order_link_id=link_id, order_id=order_id)
            return [accepted, self._fill(intent, price, now_ms, maker=False)]
        price = intent.price
        assert price is not None  # a limit order has a price (OrderIntent checks it)
        if intent.time_in_force is TimeInForce.POST_ONLY and top is not None:
            opposite = top.ask if intent.side is Side.BUY else top.bid
            touch = to_decimal(opposite)
            if (price >= touch) if intent.side is Side.BUY else (price <= touch):
                return [
                    OrderFailed(
                        order_link_id=link_id,
                        reason="post-only order would take liquidity (rejected)",
                    )
                ]
        self._resting[link_id] = _Resting(intent=intent, order_id=order_id, placed_ms=now_ms)
        return [OrderAccepted(order_link_id=link_id, order_id=order_id)]

    def cancel(self, order_link_id: str, reason: str = "cancelled") -> list[Event]:
        """Cancel a resting order; nothing when it is not resting (filled or unknown)."""
        if self._resting.pop(order_link_id, None) is None:
            return []
        return [OrderFailed(order_link_id=order_link_id, reason=reason)]

    def settle(self, now_ms: int) -> list[Event]:
        """Outcomes due by ``now_ms``: none, paper orders have no latency."""
        return []

    def expire(self, now_ms: int) -> list[Event]:
        """Cancel resting orders older than the confirmation timeout (the bot's rule)."""
        out: list[Event] = []
        for link_id, resting in list(self._resting.items()):
            if now_ms - resting.placed_ms >= self.confirm_timeout_ms:
                seconds = self.confirm_timeout_ms / 1000
                out.extend(self.cancel(link_id, f"not filled within {seconds:g}s: cancelled"))
        return out

    # ------------------------------------------------------------ market

    def on_book(self, top: BookTop, now_ms: int) -> list[Event]:
        """Fill resting orders the touch has reached."""
        if not self._resting or top.symbol != self.symbol:
            return []
        bid, ask = to_decimal(top.bid), to_decimal(top.ask)
        out: list[Event] = []
        for link_id, resting in list(self._resting.items()):
            price = resting.intent.price
            assert price is not None
            buy = resting.intent.side is Side.BUY
            if (ask <= price) if buy else (bid >= price):
                del self._resting[link_id]
                out.append(self._fill(resting.intent, price, now_ms, maker=True))
        return out

    def on_trades(self, trades: Sequence[Trade], now_ms: int) -> list[Event]:
        """Fill resting orders a public trade printed beyond."""
        if not self._resting or not trades:
            return []
        prices = [to_decimal(t.price) for t in trades if t.symbol == self.symbol]
        if not prices:
            return []
        low, high = min(prices), max(prices)
        out: list[Event] = []
        for link_id, resting in list(self._resting.items()):
            price = resting.intent.price
            assert price is not None
            buy = resting.intent.side is Side.BUY
            if (low < price) if buy else (high > price):
                del self._resting[link_id]
                out.append(self._fill(resting.intent, price, now_ms, maker=True))
        return out

    # ------------------------------------------------------------ internals

    def _reducible(self, side: Side) -> Decimal:
        """How much an order of ``side`` can reduce the position."""
        if side is Side.SELL and self.size > 0:
            return self.size
        if side is Side.BUY and self.size < 0:
            return -self.size
        return _ZERO

    def _touch(self, side: Side, top: BookTop | None, last_price: float | None) -> Decimal | None:
        if top is not None:
            price = to_decimal(top.ask if side is Side.BUY else top.bid)
        elif last_price is not None:
            price = to_decimal(last_price)
        else:
            return None
        tick = self.tick_size
        return price.quantize(tick) if tick is not None and price % tick == 0 else price

    def _fill(self, intent: OrderIntent, price: Decimal, now_ms: int, *, maker: bool) -> Event:
        qty = intent.qty
        if intent.reduce_only:
            qty = min(qty, self._reducible(intent.side))
        realised = self._apply(intent.side, qty, price)
        self.fills.append(
            PaperFill(
                t=now_ms,
                order_link_id=intent.order_link_id,
                side=intent.side,
                qty=qty,
                price=price,
                reduce_only=intent.reduce_only,
                maker=maker,
                realised=realised,
            )
        )
        return OrderFilled(order_link_id=intent.order_link_id, filled_qty=qty, avg_price=price)

    def _apply(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """Update the one-way position; return the PnL this fill realised."""
        signed = qty * side.sign
        size = self.size
        if size == 0 or (size > 0) == (signed > 0):
            total = size + signed
            self.avg_price = (self.avg_price * abs(size) + price * qty) / abs(total)
            self.size = total
            return _ZERO
        closed = min(qty, abs(size))
        realised = (price - self.avg_price) * closed * (1 if size > 0 else -1)
        self.realised_pnl += realised
        rest = size + signed
        if rest == 0:
            self.size, self.avg_price = _ZERO, _ZERO
        elif (rest > 0) != (size > 0):  # flipped: the remainder opens at this price
            self.size, self.avg_price = rest, price
        else:
            self.size = rest
        return realised
