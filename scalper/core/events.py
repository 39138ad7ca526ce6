"""The events the engine consumes: market data, order outcomes, reads, controls.

Re-exported by ``core.model``; ``Event`` is their union, the engine's input type.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .rules import (
    DECIMAL,
    NON_NEGATIVE_DECIMAL,
    OPTIONAL_POSITIVE_DECIMAL,
    POSITIVE_DECIMAL,
)
from .values import (
    BookTop,
    ClosedPnl,
    Instrument,
    Side,
    Trade,
)

__all__ = [
    "BookUpdate",
    "ClosedPnlRows",
    "Event",
    "Flatten",
    "Halt",
    "OpenOrders",
    "OrderAccepted",
    "OrderEvent",
    "OrderFailed",
    "OrderFilled",
    "OrderPartiallyFilled",
    "Pause",
    "PositionSnapshot",
    "ProtectionFailed",
    "ProtectionSet",
    "Resume",
    "Resync",
    "SymbolSelected",
    "Tick",
    "TradeTicks",
]


@attrs.frozen(kw_only=True, weakref_slot=False)  # built by ``hotpath`` (no weakref slot)
class BookUpdate:
    """The local book changed (or turned invalid)."""

    top: BookTop


@attrs.frozen(kw_only=True, weakref_slot=False)  # built by ``hotpath`` (no weakref slot)
class TradeTicks:
    """Public trades of one symbol, oldest first.

    Also what the stream parsers return for a trade frame (``bybit.messages`` names it
    ``TradesMessage``), so a frame becomes the engine's event with no copy.
    """

    symbol: str
    trades: tuple[Trade, ...]


@attrs.frozen(kw_only=True)
class OrderAccepted:
    """The exchange acknowledged an order (not a fill)."""

    order_link_id: str
    order_id: str


@attrs.frozen(kw_only=True)
class _FillReport:
    """A fill of an order of ours; ``filled_qty`` is cumulative."""

    order_link_id: str
    filled_qty: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    avg_price: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
    #: cumulative fee of the order so far (settle coin; 0 = not known: estimated)
    fee: Decimal = attrs.field(default=Decimal(0), validator=DECIMAL)
    #: the exchange's order id when the shell knows it ("" = not given)
    order_id: str = ""


@attrs.frozen(kw_only=True)
class OrderPartiallyFilled(_FillReport):
    """Some of an order filled; it is still working."""


@attrs.frozen(kw_only=True)
class OrderFilled(_FillReport):
    """An order filled completely. ``filled_qty`` is cumulative."""


@attrs.frozen(kw_only=True)
class OrderFailed:
    """An order ended without filling completely: rejected, cancelled or timed out.

    ``filled_qty`` is the true cumulative fill read from the exchange: a partial
    fill before the end is a real position.
    """

    order_link_id: str
    reason: str
    filled_qty: Decimal = attrs.field(default=Decimal(0), validator=NON_NEGATIVE_DECIMAL)
    avg_price: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
    #: cumulative fee of the order (settle coin; 0 = not known: estimated)
    fee: Decimal = attrs.field(default=Decimal(0), validator=DECIMAL)
    #: the exchange's order id when the shell knows it ("" = not given)
    order_id: str = ""


@attrs.frozen(kw_only=True)
class PositionSnapshot:
    """The exchange's view of our position: the source of truth.

    ``side`` is None and ``size`` zero when flat.
    """

    symbol: str
    side: Side | None
    size: Decimal = attrs.field(validator=NON_NEGATIVE_DECIMAL)
    avg_price: Decimal = attrs.field(default=Decimal(0), validator=NON_NEGATIVE_DECIMAL)
    unrealised_pnl: Decimal = attrs.field(default=Decimal(0), validator=DECIMAL)
    realised_pnl: Decimal = attrs.field(default=Decimal(0), validator=DECIMAL)
    #: the exchange-side stop-loss armed on the position (None: none; Bybit sends "" or "0")
    stop_loss: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
    #: the exchange-side take-profit armed on the position (None: none)
    take_profit: Decimal | None = attrs.field(default=None, validator=OPTIONAL_POSITIVE_DECIMAL)
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
    stop_loss: Decimal = attrs.field(validator=POSITIVE_DECIMAL)


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
class _OperatorRequest:
    """What an operator asked for, and who asked (the engine logs it with the request)."""

    #: who asked: ``tty``, ``http``, ``telegram:<chat id>``, ``restored``
    origin: str = attrs.field(validator=attrs.validators.min_len(1))


@attrs.frozen(kw_only=True)
class Pause(_OperatorRequest):
    """The operator asks for no new entries; exits, protection and reconcile go on."""


@attrs.frozen(kw_only=True)
class Resume(_OperatorRequest):
    """The operator allows entries again (a halt stays a halt)."""


@attrs.frozen(kw_only=True)
class Flatten(_OperatorRequest):
    """The operator asks to close the position now; it also pauses (no re-entry)."""


#: a report on one of our orders: each carries its ``order_link_id`` and ``order_id``
OrderEvent = OrderAccepted | OrderPartiallyFilled | OrderFilled | OrderFailed

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
