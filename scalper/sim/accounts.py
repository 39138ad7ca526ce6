"""Accounts of the simulated exchange: orders, executions, one-way positions, the wallet.

Plain mutable records (the venue is their only writer) plus the margin arithmetic of a
unified account in USDT, simplified the way a careful reader of Bybit's docs expects:

* wallet balance = deposit + realised PnL - fees;
* equity (margin balance) = wallet balance + unrealised PnL at the mark price;
* initial margin = position value / leverage + open orders that would grow the position;
* available balance = equity - initial margin (order checks use it: 110007).

A position carries its Full-mode stops (``stop_loss`` / ``take_profit``, 0 when none,
with their trigger prices) and the opening fees not yet charged to a close
(``open_fee``), so every closing order's closed-PnL record (``ClosedPnlRecord``) is net
of its share of the opening fees and of its own closing fee, as Bybit's is.

All money is Decimal; nothing here is on the market-data hot path.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import attrs

__all__ = [
    "MAKER_FEE",
    "OPEN_STATUSES",
    "TAKER_FEE",
    "Account",
    "ClosedPnlRecord",
    "Execution",
    "Order",
    "Position",
]

TAKER_FEE = Decimal("0.00055")
MAKER_FEE = Decimal("0.0002")
ZERO = Decimal(0)
#: statuses of an order that can still trade
OPEN_STATUSES = frozenset({"New", "PartiallyFilled"})
#: closed orders kept for order/realtime (Bybit: the latest 500)
RECENT_CLOSED = 500


@attrs.define(slots=True, kw_only=True)
class Order:
    """One order, as the venue tracks it (Bybit's fields are made from it in ``rows``)."""

    order_id: str
    order_link_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    price: Decimal
    qty: Decimal
    reduce_only: bool
    close_on_trigger: bool
    created_ms: int
    updated_ms: int
    last_price_on_created: str
    take_profit: str = ""
    stop_loss: str = ""
    #: trigger prices of the attached stops ("" when the order carries none)
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    #: "StopLoss" / "TakeProfit" for the close a position stop fired; "" otherwise
    stop_order_type: str = ""
    create_type: str = "CreateByUser"
    #: the stop price that fired this order (0: not a triggered order)
    trigger_price: Decimal = ZERO
    trigger_by: str = ""
    #: 1 rise / 2 fall for a triggered order
    trigger_direction: int = 0
    position_idx: int = 0
    status: str = "New"
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    closed_pnl: Decimal = ZERO

    @property
    def is_open(self) -> bool:
        """True while the order can still trade."""
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working (0 once closed)."""
        return self.qty - self.cum_qty if self.is_open else ZERO

    @property
    def avg_price(self) -> Decimal:
        """Average fill price (0 when unfilled)."""
        return self.cum_value / self.cum_qty if self.cum_qty else ZERO

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.side == "Buy" else -1


@attrs.define(slots=True, kw_only=True)
class Execution:
    """One fill of one order."""

    exec_id: str
    order: Order
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    exec_ms: int
    closed_size: Decimal
    exec_pnl: Decimal
    mark_price: str
    leaves_qty: Decimal
    seq: int

    @property
    def value(self) -> Decimal:
        """execPrice * execQty."""
        return self.price * self.qty


@attrs.define(slots=True, kw_only=True)
class Position:
    """A one-way position: signed size (+ long, - short) and its entry price."""

    symbol: str
    leverage: Decimal
    size: Decimal = ZERO
    avg_price: Decimal = ZERO
    cur_realised: Decimal = ZERO
    cum_realised: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = 0
    #: Full-mode stops armed on the position (0: none) and the price that fires each
    stop_loss: Decimal = ZERO
    take_profit: Decimal = ZERO
    sl_trigger_by: str = "LastPrice"
    tp_trigger_by: str = "LastPrice"
    #: trading fees paid to open the part of the position still held (charged pro rata
    #: to the closes' closed-PnL records)
    open_fee: Decimal = ZERO

    def clear_stops(self) -> None:
        """Cancel the Full-mode stops (Bybit does when the position closes)."""
        self.stop_loss = ZERO
        self.take_profit = ZERO
        self.sl_trigger_by = "LastPrice"
        self.tp_trigger_by = "LastPrice"

    @property
    def side(self) -> str:
        """ "Buy", "Sell", or "" when flat (Bybit's spelling)."""
        if self.size > 0:
            return "Buy"
        if self.size < 0:
            return "Sell"
        return ""

    def value(self) -> Decimal:
        """|size| * entry price."""
        return abs(self.size) * self.avg_price

    def unrealised(self, mark: Decimal) -> Decimal:
        """Unrealised PnL at ``mark``."""
        return self.size * (mark - self.avg_price)

    def apply_fill(
        self, signed_qty: Decimal, price: Decimal, fee: Decimal
    ) -> tuple[Decimal, Decimal]:
        """Book one fill; return (closed size, gross realised PnL of the closed part)."""
        closed = ZERO
        pnl = ZERO
        if self.size == 0 or (self.size > 0) == (signed_qty > 0):
            if self.size == 0:
                self.cur_realised = ZERO
            new_size = self.size + signed_qty
            self.avg_price = (abs(self.size) * self.avg_price + abs(signed_qty) * price) / abs(
                new_size
            )
            self.size = new_size
        else:
            closed = min(abs(signed_qty), abs(self.size))
            direction = Decimal(1) if self.size > 0 else Decimal(-1)
            pnl = closed * (price - self.avg_price) * direction
            rest = abs(signed_qty) - closed
            self.size += signed_qty
            if self.size == 0:
                self.avg_price = ZERO
            elif rest > 0:  # flipped through zero: the rest opens at this price
                self.avg_price = price
                self.cur_realised = ZERO
        self.cur_realised += pnl - fee
        self.cum_realised += pnl - fee
        return closed, pnl


@attrs.define(slots=True, kw_only=True)
class ClosedPnlRecord:
    """One closing order's realised result (``/v5/position/closed-pnl`` row).

    ``net`` = gross PnL of the closed quantity - its closing fee - the opening fees of
    that quantity (pro rata): what Bybit's ``closedPnl`` holds.
    """

    order: Order
    #: "Trade"; "BustTrade" for a liquidation
    exec_type: str
    leverage: Decimal
    closed_size: Decimal = ZERO
    entry_value: Decimal = ZERO
    exit_value: Decimal = ZERO
    net: Decimal = ZERO
    fill_count: int = 0
    created_ms: int = 0
    updated_ms: int = 0


@attrs.define(slots=True, kw_only=True)
class Account:
    """One API key's account: wallet, positions, orders, fills, rate-limit windows."""

    api_key: str
    api_secret: str = attrs.field(repr=False)
    balance: Decimal
    default_leverage: Decimal = Decimal(10)
    #: a hedge-mode account: position rows come as positionIdx 1 (buy side) and 2 (sell
    #: side), and an order or a trading-stop must name the side (positionIdx 0 refused)
    hedge_mode: bool = False
    positions: dict[str, Position] = attrs.field(factory=dict)
    orders: dict[str, Order] = attrs.field(factory=dict)
    by_link: dict[str, Order] = attrs.field(factory=dict)
    open_orders: dict[str, Order] = attrs.field(factory=dict)
    recent_closed: deque[Order] = attrs.field(factory=lambda: deque(maxlen=RECENT_CLOSED))
    executions: deque[Execution] = attrs.field(factory=lambda: deque(maxlen=10_000))
    #: closing orders' results by order id, oldest first
    closed_pnl: dict[str, ClosedPnlRecord] = attrs.field(factory=dict)
    cum_realised: Decimal = ZERO
    #: endpoint -> timestamps (ms) of the calls in the rolling 1 s window
    windows: dict[str, deque[int]] = attrs.field(factory=dict)

    def position(self, symbol: str) -> Position:
        """The symbol's position record (created flat on first use)."""
        pos = self.positions.get(symbol)
        if pos is None:
            pos = Position(symbol=symbol, leverage=self.default_leverage)
            self.positions[symbol] = pos
        return pos

    def order_im(self, exclude: Order | None = None) -> Decimal:
        """Initial margin held by open orders that would grow their position."""
        total = ZERO
        for order in self.open_orders.values():
            if order is exclude or order.reduce_only:
                continue
            pos = self.positions.get(order.symbol)
            lev = pos.leverage if pos else self.default_leverage
            if pos is not None and pos.size * order.sign < 0:
                grow = max(ZERO, order.leaves_qty - abs(pos.size))
            else:
                grow = order.leaves_qty
            total += grow * order.price / lev
        return total

    def figures(self, marks: dict[str, Decimal]) -> dict[str, Decimal]:
        """Wallet figures at the given mark prices (names as Bybit's wallet fields)."""
        upl = ZERO
        pos_im = ZERO
        pos_mm = ZERO
        for pos in self.positions.values():
            if pos.size == 0:
                continue
            mark = marks.get(pos.symbol, pos.avg_price)
            upl += pos.unrealised(mark)
            value = abs(pos.size) * mark
            pos_im += value / pos.leverage
            pos_mm += value * Decimal("0.005")
        order_im = self.order_im()
        equity = self.balance + upl
        im = pos_im + order_im
        return {
            "walletBalance": self.balance,
            "equity": equity,
            "unrealisedPnl": upl,
            "totalPositionIM": pos_im,
            "totalPositionMM": pos_mm,
            "totalOrderIM": order_im,
            "initialMargin": im,
            "available": equity - im,
        }

    def close(self, order: Order) -> None:
        """Move a finished order from the open set to the recent-closed list."""
        if self.open_orders.pop(order.order_id, None) is not None:
            self.recent_closed.append(order)
