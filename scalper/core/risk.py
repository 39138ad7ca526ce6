"""Risk limits the engine checks before every entry, and the kill switch.

Money is ``Decimal`` throughout: PnL and notionals come from the exchange as exact
decimal strings, and a limit compared against a binary float can be off by a cent
in the wrong direction. Time is ``now_ms`` (epoch milliseconds, UTC) passed in by
the caller; nothing here reads a clock.

* **max position**: an entry whose notional exceeds ``max_position_usd`` is refused.
* **order rate**: at most ``max_orders_per_minute`` orders (entries *and* closes are
  counted, since both spend the exchange's rate budget) in any sliding 60 s window;
  only entries are refused by it, a close is never held back.
* **daily loss**: realised PnL net of fees since the start of the UTC day, from every
  source (``pnl.DayBook``: our closes, exchange stops, liquidations, manual closes),
  plus the open position's unrealised PnL net of its estimated closing fee (the
  caller passes it). Once the loss reaches ``max_daily_loss_usd`` the kill switch
  trips: entries are refused and the engine halts. The realised part resets at
  00:00 UTC, computed from ``now_ms``; it survives restarts through ``RiskState``.
* **cooldown**: after a failed entry or a losing close, no entry for ``cooldown_ms``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import attrs

from .model import TriggerBy
from .pnl import DAY_MS, DayBook, utc_day
from .rules import (
    POSITIVE_DECIMAL,
    check_fee_rate,
    check_int,
    check_percent,
    check_trigger,
    field_validator,
)

__all__ = ["DAY_MS", "MINUTE_MS", "RiskGate", "RiskLimits"]

#: the order-rate window
MINUTE_MS = 60_000


@attrs.frozen(kw_only=True)
class RiskLimits:
    """The ``[risk]`` limits, plus the entry cooldown (``[strategy] cooldown_s`` in ms)."""

    max_position_usd: Decimal = attrs.field(default=Decimal(5000), validator=POSITIVE_DECIMAL)
    max_daily_loss_usd: Decimal = attrs.field(default=Decimal(100), validator=POSITIVE_DECIMAL)
    max_orders_per_minute: int = attrs.field(default=20, validator=field_validator(check_int, ge=1))
    #: no entry for this long after a failed entry or a losing close
    cooldown_ms: int = attrs.field(default=5_000, validator=field_validator(check_int, ge=0))
    #: the exchange-side stop sits this much (percent of the entry) beyond the engine's
    exchange_stop_margin_pct: float = attrs.field(
        default=0.25, validator=field_validator(check_percent, zero=True)
    )
    #: which price triggers the exchange-side stop
    exchange_stop_trigger: TriggerBy = attrs.field(
        default=TriggerBy.MARK_PRICE, validator=field_validator(check_trigger)
    )
    #: fee rate used where the exchange did not report the fee (a taker fill assumed)
    taker_fee_rate: Decimal = attrs.field(
        default=Decimal("0.00055"), validator=field_validator(check_fee_rate)
    )


class RiskGate:
    """Mutable risk bookkeeping around immutable ``RiskLimits`` (pure: time is passed in)."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._orders: deque[int] = deque()
        #: the day's realised PnL, net of fees, every source
        self.book = DayBook()
        self._cooldown_until_ms: int | None = None

    # ------------------------------------------------------------ bookkeeping

    def roll_day(self, now_ms: int) -> bool:
        """Move to ``now_ms``'s UTC day; True when a new day began (realised reset)."""
        return self.book.roll(utc_day(now_ms))

    def _roll_day(self, now_ms: int) -> None:
        self.roll_day(now_ms)

    def _prune(self, now_ms: int) -> None:
        orders = self._orders
        horizon = now_ms - MINUTE_MS
        while orders and orders[0] <= horizon:
            orders.popleft()

    def record_order(self, now_ms: int) -> None:
        """Count an order placed at ``now_ms`` against the per-minute limit."""
        self._prune(now_ms)
        self._orders.append(now_ms)

    def orders_last_minute(self, now_ms: int) -> int:
        """Orders placed in the 60 s ending at ``now_ms`` (exclusive of ``now - 60 s``)."""
        self._prune(now_ms)
        return len(self._orders)

    def record_realised_pnl(self, pnl: Decimal, now_ms: int) -> None:
        """Add a closed trade's realised PnL (negative for a loss) to today's total."""
        self._roll_day(now_ms)
        self.book.add(pnl)

    def realised_today(self, now_ms: int) -> Decimal:
        """Realised PnL since 00:00 UTC of ``now_ms``'s day."""
        self._roll_day(now_ms)
        return self.book.realised_net

    def daily_loss(self, now_ms: int, unrealised_pnl: Decimal = Decimal(0)) -> Decimal:
        """Today's loss as a positive number (realised + unrealised; negative = profit)."""
        return -(self.realised_today(now_ms) + unrealised_pnl)

    def loss_limit_breached(self, now_ms: int, unrealised_pnl: Decimal = Decimal(0)) -> bool:
        """True when today's loss has reached ``max_daily_loss_usd``: the kill switch."""
        return self.daily_loss(now_ms, unrealised_pnl) >= self.limits.max_daily_loss_usd

    def start_cooldown(self, now_ms: int) -> None:
        """No entries until ``now_ms + cooldown_ms`` (a later cooldown never shortens one)."""
        until = now_ms + self.limits.cooldown_ms
        if self._cooldown_until_ms is None or until > self._cooldown_until_ms:
            self._cooldown_until_ms = until

    def cooling_down(self, now_ms: int) -> bool:
        """True while a cooldown is running."""
        return self._cooldown_until_ms is not None and now_ms < self._cooldown_until_ms

    @property
    def cooldown_until_ms(self) -> int | None:
        """When the last cooldown ends (it may already have ended)."""
        return self._cooldown_until_ms

    # ------------------------------------------------------------ the gate

    def allow_entry(
        self, notional_usd: Decimal, now_ms: int, unrealised_pnl: Decimal = Decimal(0)
    ) -> str | None:
        """None when an entry of ``notional_usd`` may be placed now, else the refusal reason."""
        limits = self.limits
        if self.loss_limit_breached(now_ms, unrealised_pnl):
            return (
                f"daily loss {self.daily_loss(now_ms, unrealised_pnl)} reached limit "
                f"{limits.max_daily_loss_usd}"
            )
        if self.cooling_down(now_ms):
            return f"cooling down until {self._cooldown_until_ms}"
        if notional_usd > limits.max_position_usd:
            return f"notional {notional_usd} above max position {limits.max_position_usd}"
        orders = self.orders_last_minute(now_ms)
        if orders >= limits.max_orders_per_minute:
            return f"order rate {orders}/min at limit {limits.max_orders_per_minute}"
        return None
