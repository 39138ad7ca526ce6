"""The commands the engine emits: orders, cancels, reads, logs, alerts, journal records.

Re-exported by ``core.model``; ``Command`` is their union, the engine's output type.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .rules import (
    DECIMAL,
    POSITIVE_DECIMAL,
)
from .values import (
    EngineState,
    OrderIntent,
    TriggerBy,
)

__all__ = [
    "Alert",
    "CancelOrder",
    "Command",
    "Log",
    "PersistRiskState",
    "PlaceOrder",
    "ProtectPosition",
    "RequestClosedPnl",
    "RequestPosition",
    "RiskState",
    "Subscribe",
    "Transition",
]


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
    realised_net: Decimal = attrs.field(validator=DECIMAL)  #: the day's realised PnL, net
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
    stop_loss: Decimal = attrs.field(validator=POSITIVE_DECIMAL)
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
