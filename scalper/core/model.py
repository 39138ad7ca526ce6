"""Value types shared by every part of scalper: market data, orders, events, commands.

Everything here is a frozen attrs class. Two rules shape it:

* Market data is ``float``. It arrives thousands of times a second, is only ever
  compared and averaged, and Decimal would cost ~4x on that hot path.
* Anything that becomes part of an order is ``Decimal``: an order carries exact
  prices and quantities already rounded to the instrument's grid. ``OrderIntent``'s
  validators refuse a float, so a float can never reach the exchange.

The engine (``core.strategy``) consumes the *events* below and emits the *commands*;
the trio shell carries commands out and feeds outcomes back as events. Bybit's wire
names never appear here: ``bybit.parse`` translates at the edge.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

from .rules import (
    check_decimal,
    check_non_negative_decimal,
    check_optional_positive_decimal,
    check_positive_decimal,
    field_validator,
)

__all__ = [
    "Alert",
    "BookTop",
    "BookUpdate",
    "CancelOrder",
    "ClosedPnl",
    "ClosedPnlRows",
    "Command",
    "EngineState",
    "Event",
    "Fill",
    "Flatten",
    "Halt",
    "Instrument",
    "Log",
    "OpenOrders",
    "OrderAccepted",
    "OrderFailed",
    "OrderFilled",
    "OrderIntent",
    "OrderPartiallyFilled",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Pause",
    "PersistRiskState",
    "PlaceOrder",
    "PositionSnapshot",
    "ProtectPosition",
    "ProtectionFailed",
    "ProtectionSet",
    "RequestClosedPnl",
    "RequestPosition",
    "Resume",
    "Resync",
    "RiskState",
    "Side",
    "Subscribe",
    "SymbolSelected",
    "Tick",
    "TickerStat",
    "TimeInForce",
    "Trade",
    "TradeTicks",
    "Transition",
    "TriggerBy",
]


class Side(enum.Enum):
    """Order or position side. Values are Bybit's spelling, used only for display."""

    BUY = "Buy"  #: long / buy
    SELL = "Sell"  #: short / sell

    @property
    def sign(self) -> int:
        """+1 for a long, -1 for a short: signed size = sign * size."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The side that closes a position of this side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.Enum):
    """Order type. A market order always behaves as IOC."""

    MARKET = "Market"
    LIMIT = "Limit"


class TimeInForce(enum.Enum):
    """How long an order may rest on the book."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"


class TriggerBy(enum.Enum):
    """Which price fires an exchange-side stop (Bybit's ``slTriggerBy`` / ``tpTriggerBy``)."""

    LAST_PRICE = "LastPrice"  #: the last traded price (a wick on the book can fire it)
    MARK_PRICE = "MarkPrice"  #: the mark price (index-based, smoother: the default here)
    INDEX_PRICE = "IndexPrice"  #: the index price of the spot venues


class EngineState(enum.Enum):
    """The strategy engine's states (``docs/engine.md`` has the table)."""

    IDLE = "Idle"  #: flat, no order working
    ORDER_PENDING = "OrderPending"  #: entry order sent, outcome unknown
    POSITION_OPEN = "PositionOpen"  #: position confirmed, stops armed
    CLOSING_POSITION = "ClosingPosition"  #: reduce-only close sent
    HALTED = "Halted"  #: kill switch: no new entries, ever, until restart


# One rule per concept, shared with the settings loader and the engine config (core.rules).
_decimal = field_validator(check_decimal)
_positive_decimal = field_validator(check_positive_decimal)
_non_negative_decimal = field_validator(check_non_negative_decimal)
_optional_positive_decimal = field_validator(check_optional_positive_decimal)


_SYMBOL = attrs.validators.and_(attrs.validators.instance_of(str), attrs.validators.min_len(1))


@attrs.frozen(kw_only=True)
class Instrument:
    """Trading rules of one linear contract (from instruments-info)."""

    symbol: str = attrs.field(validator=_SYMBOL)
    tick_size: Decimal = attrs.field(validator=_positive_decimal)
    qty_step: Decimal = attrs.field(validator=_positive_decimal)
    min_qty: Decimal = attrs.field(validator=_positive_decimal)
    max_qty: Decimal = attrs.field(validator=_positive_decimal)
    #: market orders have their own, lower cap on Bybit
    max_mkt_qty: Decimal = attrs.field(validator=_positive_decimal)
    min_notional: Decimal = attrs.field(validator=_non_negative_decimal)


@attrs.frozen(kw_only=True)
class Trade:
    """One public trade. ``side`` is the taker's side."""

    symbol: str
    price: float
    qty: float
    side: Side
    ts_ms: int


@attrs.frozen(kw_only=True)
class BookTop:
    """Top of the local order book, as the strategy needs it.

    ``valid`` is False while the book is being rebuilt (delta before snapshot,
    crossed book, update id going backwards): entries are gated on it, exits are not.
    """

    symbol: str
    bid: float
    bid_size: float
    ask: float
    ask_size: float
    ts_ms: int
    valid: bool = True

    @property
    def mid(self) -> float:
        """Mid price."""
        return (self.bid + self.ask) / 2.0

    @property
    def spread_bps(self) -> float:
        """Spread in basis points of the mid."""
        mid = self.mid
        return (self.ask - self.bid) / mid * 10_000.0 if mid > 0 else float("inf")


@attrs.frozen(kw_only=True)
class OrderIntent:
    """An order the engine wants placed: exact, rounded, carrying our client id."""

    symbol: str = attrs.field(validator=_SYMBOL)
    side: Side
    order_type: OrderType
    qty: Decimal = attrs.field(validator=_positive_decimal)
    price: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    #: our client order id (Bybit's orderLinkId): <= 36 chars of [A-Za-z0-9_-]
    order_link_id: str = attrs.field(validator=attrs.validators.matches_re(r"[A-Za-z0-9_-]{1,36}"))
    #: a Full-mode stop-loss attached on the exchange with the order (covers the whole
    #: position the order opens); Bybit refuses it together with reduce_only
    stop_loss: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    #: the price that fires ``stop_loss``
    sl_trigger_by: TriggerBy = attrs.field(
        default=TriggerBy.MARK_PRICE, validator=attrs.validators.instance_of(TriggerBy)
    )

    def __attrs_post_init__(self) -> None:
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("a limit order needs a price")
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError("a market order takes no price")
        if self.stop_loss is not None and self.reduce_only:
            raise ValueError("a reduce-only order cannot carry a stop-loss (Bybit refuses it)")


@attrs.frozen(kw_only=True)
class TickerStat:
    """The slice of one linear ticker the scanner scores (24 h turnover and change).

    Market data, so floats: ``price24h_pcnt`` is Bybit's fraction (0.05 = +5 %).
    """

    symbol: str
    turnover24h: float
    price24h_pcnt: float
    last_price: float


class OrderStatus(enum.Enum):
    """An order's lifecycle state, as the exchange reports it (Bybit's spelling)."""

    NEW = "New"  #: resting, nothing filled
    PARTIALLY_FILLED = "PartiallyFilled"  #: resting, some filled
    UNTRIGGERED = "Untriggered"  #: conditional order waiting for its trigger
    REJECTED = "Rejected"  #: refused by the matching engine (may carry fills on derivatives)
    PARTIALLY_FILLED_CANCELED = "PartiallyFilledCanceled"  #: spot: cancelled after a partial fill
    FILLED = "Filled"  #: completely filled
    CANCELLED = "Cancelled"  #: cancelled (on derivatives it may carry fills)
    TRIGGERED = "Triggered"  #: conditional order triggered (transient)
    DEACTIVATED = "Deactivated"  #: conditional order cancelled before triggering

    @property
    def is_final(self) -> bool:
        """True when the order can no longer change (no more fills will come)."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        OrderStatus.REJECTED,
        OrderStatus.PARTIALLY_FILLED_CANCELED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.DEACTIVATED,
    }
)


@attrs.frozen(kw_only=True)
class OrderUpdate:
    """The exchange's view of one order at one moment (REST read or stream push).

    ``cum_exec_qty`` is cumulative: a final status with ``cum_exec_qty > 0`` is a real
    (partial) position whatever the status says.
    """

    symbol: str = attrs.field(validator=_SYMBOL)
    order_id: str
    #: our client order id; "" for orders placed without one
    order_link_id: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    qty: Decimal = attrs.field(validator=_non_negative_decimal)
    price: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    avg_price: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    cum_exec_qty: Decimal = attrs.field(default=Decimal(0), validator=_non_negative_decimal)
    leaves_qty: Decimal = attrs.field(default=Decimal(0), validator=_non_negative_decimal)
    #: Bybit's rejectReason ("EC_NoError" when none)
    reject_reason: str = ""
    updated_ms: int = 0
    #: Bybit's stopOrderType: "StopLoss" / "TakeProfit" for the close a stop fired,
    #: "" for a plain order (Bybit's "UNKNOWN" reads as "")
    stop_order_type: str = ""
    #: Bybit's createType: "CreateByUser", "CreateByStopLoss", "CreateByTakeProfit",
    #: "CreateByLiq"... ("" when the row does not say)
    create_type: str = ""
    #: cumulative trading fee in the settle coin (cumFeeDetail USDT, else cumExecFee)
    cum_fee: Decimal = attrs.field(default=Decimal(0), validator=_decimal)


@attrs.frozen(kw_only=True)
class Fill:
    """One execution of one of our orders. ``fee`` is in the settle coin (negative = rebate)."""

    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str = attrs.field(validator=_SYMBOL)
    side: Side
    price: Decimal = attrs.field(validator=_positive_decimal)
    qty: Decimal = attrs.field(validator=_positive_decimal)
    fee: Decimal = attrs.field(validator=_decimal)
    is_maker: bool
    exec_time_ms: int


@attrs.frozen(kw_only=True)
class ClosedPnl:
    """One closing order's realised result (a row of Bybit's closed-PnL records).

    ``closed_pnl`` is net: the opening and closing trading fees (and funding settled on
    the position) are already subtracted, so a daily loss limit adds these up. ``side``
    is the side of the closing order (Sell closes a long).
    """

    symbol: str = attrs.field(validator=_SYMBOL)
    order_id: str
    side: Side
    qty: Decimal = attrs.field(validator=_non_negative_decimal)
    closed_size: Decimal = attrs.field(validator=_non_negative_decimal)
    avg_entry_price: Decimal = attrs.field(validator=_non_negative_decimal)
    avg_exit_price: Decimal = attrs.field(validator=_non_negative_decimal)
    closed_pnl: Decimal = attrs.field(validator=_decimal)
    #: "Trade", "BustTrade" (liquidation), "Settle", "AdlTrade"...
    exec_type: str
    created_ms: int
    updated_ms: int


# ---------------------------------------------------------------- events (in)


@attrs.frozen(kw_only=True)
class BookUpdate:
    """The local book changed (or turned invalid)."""

    top: BookTop


@attrs.frozen(kw_only=True)
class TradeTicks:
    """Public trades, oldest first."""

    symbol: str
    trades: tuple[Trade, ...]


@attrs.frozen(kw_only=True)
class OrderAccepted:
    """The exchange acknowledged an order (not a fill)."""

    order_link_id: str
    order_id: str


@attrs.frozen(kw_only=True)
class OrderPartiallyFilled:
    """Some of an order filled; it is still working."""

    order_link_id: str
    filled_qty: Decimal = attrs.field(validator=_positive_decimal)
    avg_price: Decimal = attrs.field(validator=_positive_decimal)
    #: cumulative fee of the order so far (settle coin; 0 = not known: estimated)
    fee: Decimal = attrs.field(default=Decimal(0), validator=_decimal)
    #: the exchange's order id when the shell knows it ("" = not given)
    order_id: str = ""


@attrs.frozen(kw_only=True)
class OrderFilled:
    """An order filled completely. ``filled_qty`` is cumulative."""

    order_link_id: str
    filled_qty: Decimal = attrs.field(validator=_positive_decimal)
    avg_price: Decimal = attrs.field(validator=_positive_decimal)
    #: cumulative fee of the order so far (settle coin; 0 = not known: estimated)
    fee: Decimal = attrs.field(default=Decimal(0), validator=_decimal)
    #: the exchange's order id when the shell knows it ("" = not given)
    order_id: str = ""


@attrs.frozen(kw_only=True)
class OrderFailed:
    """An order ended without filling completely: rejected, cancelled or timed out.

    ``filled_qty`` is the true cumulative fill read from the exchange: a partial
    fill before the end is a real position.
    """

    order_link_id: str
    reason: str
    filled_qty: Decimal = attrs.field(default=Decimal(0), validator=_non_negative_decimal)
    avg_price: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    #: cumulative fee of the order (settle coin; 0 = not known: estimated)
    fee: Decimal = attrs.field(default=Decimal(0), validator=_decimal)
    #: the exchange's order id when the shell knows it ("" = not given)
    order_id: str = ""


@attrs.frozen(kw_only=True)
class PositionSnapshot:
    """The exchange's view of our position: the source of truth.

    ``side`` is None and ``size`` zero when flat.
    """

    symbol: str
    side: Side | None
    size: Decimal = attrs.field(validator=_non_negative_decimal)
    avg_price: Decimal = attrs.field(default=Decimal(0), validator=_non_negative_decimal)
    unrealised_pnl: Decimal = attrs.field(default=Decimal(0), validator=_decimal)
    realised_pnl: Decimal = attrs.field(default=Decimal(0), validator=_decimal)
    #: the exchange-side stop-loss armed on the position (None: none; Bybit sends "" or "0")
    stop_loss: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    #: the exchange-side take-profit armed on the position (None: none)
    take_profit: Decimal | None = attrs.field(default=None, validator=_optional_positive_decimal)
    #: 0 in one-way mode; 1 (buy side) / 2 (sell side) on a hedge-mode account
    position_idx: int = 0

    @property
    def is_flat(self) -> bool:
        """True when there is no position."""
        return self.size == 0 or self.side is None


@attrs.frozen(kw_only=True)
class OpenOrders:
    """The exchange's list of our working orders for a symbol (client ids)."""

    symbol: str
    order_link_ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class SymbolSelected:
    """The scanner chose a symbol to trade."""

    symbol: str
    instrument: Instrument


@attrs.frozen(kw_only=True)
class Resync:
    """A stream reconnected or the bot started: trust nothing until reconciled.

    ``market_gap`` is True when the public stream reconnected or lost frames: the
    engine then clears its trade window, so trades on both sides of the gap never
    make one (fake) momentum signal.
    """

    reason: str
    market_gap: bool = False


@attrs.frozen(kw_only=True)
class ProtectionSet:
    """The exchange accepted the position's stop (``set_trading_stop`` succeeded)."""

    symbol: str
    stop_loss: Decimal = attrs.field(validator=_positive_decimal)


@attrs.frozen(kw_only=True)
class ProtectionFailed:
    """The exchange refused the position's stop: the engine closes the position at once."""

    symbol: str
    reason: str


@attrs.frozen(kw_only=True)
class ClosedPnlRows:
    """Closed-PnL rows read from the exchange (today, UTC); may repeat rows already seen."""

    rows: tuple[ClosedPnl, ...]


@attrs.frozen(kw_only=True)
class Halt:
    """Kill switch: stop entries, cancel orders, flatten if configured."""

    reason: str


@attrs.frozen(kw_only=True)
class Tick:
    """Timer event: lets time-based rules (cooldowns, retries, staleness) run."""


# -- operator controls (remote control: tty, http, telegram) --------------------


@attrs.frozen(kw_only=True)
class Pause:
    """The operator asks for no new entries; exits, protection and reconcile go on."""

    #: who asked: ``tty``, ``http``, ``telegram:<chat id>``, ``restored``
    origin: str = attrs.field(validator=attrs.validators.min_len(1))


@attrs.frozen(kw_only=True)
class Resume:
    """The operator allows entries again (a halt stays a halt)."""

    origin: str = attrs.field(validator=attrs.validators.min_len(1))


@attrs.frozen(kw_only=True)
class Flatten:
    """The operator asks to close the position now; it also pauses (no re-entry)."""

    origin: str = attrs.field(validator=attrs.validators.min_len(1))


Event = (
    BookUpdate
    | TradeTicks
    | OrderAccepted
    | OrderPartiallyFilled
    | OrderFilled
    | OrderFailed
    | PositionSnapshot
    | OpenOrders
    | SymbolSelected
    | Resync
    | Halt
    | Tick
    | Pause
    | Resume
    | Flatten
    | ProtectionSet
    | ProtectionFailed
    | ClosedPnlRows
)

# ---------------------------------------------------------------- commands (out)


@attrs.frozen(kw_only=True)
class PlaceOrder:
    """Place this order (idempotently, by its order_link_id)."""

    intent: OrderIntent


@attrs.frozen(kw_only=True)
class CancelOrder:
    """Cancel one of our orders by client id."""

    symbol: str
    order_link_id: str


@attrs.frozen(kw_only=True)
class Subscribe:
    """Switch market data to this symbol."""

    symbol: str


@attrs.frozen(kw_only=True)
class RequestPosition:
    """Read the position (and open orders) from the exchange and feed it back."""

    symbol: str


@attrs.frozen(kw_only=True)
class Transition:
    """The engine changed state; the shell logs and journals it with its cause."""

    before: EngineState
    after: EngineState
    cause: str


@attrs.frozen(kw_only=True)
class Log:
    """Something worth a log line (a decision, a skip) that is not a transition."""

    level: str
    message: str


@attrs.frozen(kw_only=True)
class Alert:
    """Something a human must look at (desync, halt, external close)."""

    message: str


@attrs.frozen(kw_only=True)
class RiskState:
    """What of the risk bookkeeping survives a restart (journaled, restored at start-up)."""

    day: int  #: UTC day number = now_ms // 86_400_000
    realised_net: Decimal = attrs.field(validator=_decimal)  #: the day's realised PnL, net
    #: closing orders already counted (de-duplication of closed-PnL rows across restarts)
    booked_order_ids: tuple[str, ...] = ()
    halted: bool = False  #: the daily-loss latch
    halt_reason: str | None = None


@attrs.frozen(kw_only=True)
class ProtectPosition:
    """Set the position's exchange-side stop (``/v5/position/trading-stop``, Full mode).

    The shell feeds back ``ProtectionSet`` or ``ProtectionFailed``.
    """

    symbol: str
    stop_loss: Decimal = attrs.field(validator=_positive_decimal)
    trigger_by: TriggerBy = attrs.field(validator=attrs.validators.instance_of(TriggerBy))


@attrs.frozen(kw_only=True)
class RequestClosedPnl:
    """Read today's closed-PnL rows (of ``symbol``, or all when None); feed ``ClosedPnlRows``."""

    symbol: str | None


@attrs.frozen(kw_only=True)
class PersistRiskState:
    """Journal this risk state (kind "risk_state"): emitted on every change."""

    state: RiskState


Command = (
    PlaceOrder
    | CancelOrder
    | Subscribe
    | RequestPosition
    | Transition
    | Log
    | Alert
    | ProtectPosition
    | RequestClosedPnl
    | PersistRiskState
)
