"""Value types shared by every part of scalper: market data, orders, events, commands.

Everything here is a frozen attrs class. Two rules shape it:

* Market data is ``float``. It arrives thousands of times a second, is only ever
  compared and averaged, and Decimal would cost ~4x on that hot path.
* Anything that becomes part of an order is ``Decimal``: an order carries exact
  prices and quantities already rounded to the instrument's grid. ``OrderIntent``'s
  validators refuse a float, so a float can never reach the exchange.

The engine (``core.strategy``) consumes the *events* (``core.events``) and emits the
*commands* (``core.commands``), both built of the value types of ``core.values``;
the trio shell carries commands out and feeds outcomes back as events. Bybit's wire
names never appear here: ``bybit.parse`` translates at the edge.
"""

from __future__ import annotations

from .commands import (
    Alert,
    CancelOrder,
    Command,
    Log,
    PersistRiskState,
    PlaceOrder,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    RiskState,
    Subscribe,
    Transition,
)
from .events import (
    BookUpdate,
    ClosedPnlRows,
    Event,
    Flatten,
    Halt,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    Pause,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    Resume,
    Resync,
    SymbolSelected,
    Tick,
    TradeTicks,
)
from .values import (
    BookTop,
    ClosedPnl,
    EngineState,
    Fill,
    Instrument,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TickerStat,
    TimeInForce,
    Trade,
    TriggerBy,
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
