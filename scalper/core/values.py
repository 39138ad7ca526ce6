"""The value types: sides, order types, states, instruments, market data, orders, fills.

Re-exported by ``core.model`` (which says the rules they follow); the events and
commands built from them are ``core.events`` and ``core.commands``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from .rules import (
    DECIMAL,
    NON_NEGATIVE_DECIMAL,
    OPTIONAL_POSITIVE_DECIMAL,
    POSITIVE_DECIMAL,
)

__all__ = [
    "BookTop",
    "ClosedPnl",
    "EngineState",
    "Fill",
    "Instrument",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "TickerStat",
    "TimeInForce",
    "Trade",
    "TriggerBy",
    "book_top",
    "trade",
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

    # An identity hash: ``Enum``'s own hashes the member's name in Python code, and the
    # engine looks its table up by state on every event. Members are singletons
    # compared by identity, so this hash agrees with ``==``.
    __hash__ = object.__hash__


_SYMBOL = attrs.validators.and_(attrs.validators.instance_of(str), attrs.validators.min_len(1))


@attrs.frozen(kw_only=True)
class Instrument:
    """Trading rules of one linear contract (from instruments-info)."""

    symbol: str = attrs.field(validator=_SYMBOL)
    tick_size: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    qty_step: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    min_qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    max_qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    #: market orders have their own, lower cap on Bybit
    max_mkt_qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    min_notional: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)


# no ``__weakref__`` slot: ``_builder`` needs the plain layout (a weakref slot beside
# others makes CPython 3.11 refuse the ``__class__`` change), and nothing weakrefs it
@attrs.frozen(kw_only=True, weakref_slot=False)
class Trade:
    """One public trade. ``side`` is the taker's side."""

    symbol: str
    price: float
    qty: float
    side: Side
    ts_ms: int


# no ``__weakref__`` slot: ``_builder`` needs the plain layout (a weakref slot beside
# others makes CPython 3.11 refuse the ``__class__`` change), and nothing weakrefs it
@attrs.frozen(kw_only=True, weakref_slot=False)
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


def _draft(cls: type[attrs.AttrsInstance]) -> type:
    """A plain class with the slots of ``cls``'s fields (see ``_builder``)."""
    slots = tuple(field.name for field in attrs.fields(cls))
    return type(f"_{cls.__name__}Draft", (), {"__slots__": slots})


def _builder(
    cls: type[attrs.AttrsInstance], into: type[attrs.AttrsInstance] | None = None
) -> Callable[..., Any]:
    """A function of ``cls``'s fields, positional in their order, that builds the value
    (wrapped in ``into``, a class of one field, when given: one call for both).

    Why: attrs' frozen ``__init__`` goes through ``object.__setattr__`` per field, and
    setting the slot descriptors one call at a time instead still cost 0.44 us a
    ``BookTop``: the frozen class's own ``__setattr__`` refuses a plain store. So the
    builder stores the fields in a draft, a plain class with the same slots (a plain
    store is the interpreter's fastest attribute write), then assigns the draft's
    ``__class__``: CPython allows that between classes of one slot layout (and raises
    ``TypeError`` if they ever differ; 3.11 refuses it too for a layout with a
    ``__weakref__`` slot beside others, so the classes built drop attrs' unused one).
    0.18 us a ``BookTop``. The result is the value the constructor builds: of the class
    itself, equal, same hash, frozen from then on.
    The source is generated from the fields, as attrs generates ``__init__``, so the
    builder cannot drift from the class. Every field is a required parameter (no
    default applied), and nothing else runs: only for classes without validators,
    converters or post-init (a test checks them).
    """
    names = [field.name for field in attrs.fields(cls)]
    stores = "".join(f"    draft.{name} = {name}\n" for name in names)
    namespace: dict[str, Any] = {"Draft": _draft(cls), "cls": cls}
    if into is None:
        tail = "    return draft\n"
    else:
        (wrapped,) = (field.name for field in attrs.fields(into))
        namespace.update(Event=_draft(into), into=into)
        tail = (
            f"    event = Event()\n    event.{wrapped} = draft\n"
            "    event.__class__ = into\n    return event\n"
        )
    source = (
        f"def build({', '.join(names)}):\n    draft = Draft()\n{stores}"
        f"    draft.__class__ = cls\n{tail}"
    )
    exec(compile(source, f"<{cls.__name__} builder>", "exec"), namespace)
    build: Callable[..., Any] = namespace["build"]
    build.__qualname__ = f"{(into or cls).__name__}.build"
    return build


#: ``book_top(symbol, bid, bid_size, ask, ask_size, ts_ms, valid)``: a ``BookTop`` built
#: for the hot path (the book makes one per frame; see ``_builder``)
book_top: Callable[[str, float, float, float, float, int, bool], BookTop] = _builder(BookTop)
#: ``trade(symbol, price, qty, side, ts_ms)``: a ``Trade`` built for the hot path (one
#: per public trade)
trade: Callable[[str, float, float, Side, int], Trade] = _builder(Trade)


@attrs.frozen(kw_only=True)
class OrderIntent:
    """An order the engine wants placed: exact, rounded, carrying our client id."""

    symbol: str = attrs.field(validator=_SYMBOL)
    side: Side
    order_type: OrderType
    qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    price: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    #: our client order id (Bybit's orderLinkId): <= 36 chars of [A-Za-z0-9_-]
    order_link_id: str = attrs.field(validator=attrs.validators.matches_re(r"[A-Za-z0-9_-]{1,36}"))
    #: a Full-mode stop-loss attached on the exchange with the order (covers the whole
    #: position the order opens); Bybit refuses it together with reduce_only
    stop_loss: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
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
    qty: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    price: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
    avg_price: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
    cum_exec_qty: Decimal = attrs.field(default=Decimal(0), validator=NON_NEGATIVE_DECIMAL)
    leaves_qty: Decimal = attrs.field(default=Decimal(0), validator=NON_NEGATIVE_DECIMAL)
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
    cum_fee: Decimal = attrs.field(default=Decimal(0), validator=DECIMAL)


@attrs.frozen(kw_only=True)
class Fill:
    """One execution of one of our orders. ``fee`` is in the settle coin (negative = rebate)."""

    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str = attrs.field(validator=_SYMBOL)
    side: Side
    price: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    fee: Decimal = attrs.field(validator=DECIMAL)
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
    qty: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    closed_size: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    avg_entry_price: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    avg_exit_price: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    closed_pnl: Decimal = attrs.field(validator=DECIMAL)
    #: "Trade", "BustTrade" (liquidation), "Settle", "AdlTrade"...
    exec_type: str
    created_ms: int
    updated_ms: int
