"""Our orders in a backtest, and what the matcher did to them told as the engine's events.

The matcher reports by changed order and execution (what the simulator turns into
private pushes). The engine wants what the bot's execution task hands it: accepted,
partially filled, filled, failed with its true filled quantity. And the backtest's
result wants each execution with *our* fee (maker 0.02 %, taker 0.055 % by default,
settable), computed from its price, quantity and maker flag, so the matcher's constant
rates do not decide the PnL. ``OrderOutcomes`` does both, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs

from scalper.core.model import (
    Event,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    Side,
)
from scalper.sim.accounts import Order
from scalper.sim.matching import Matcher

from .recorded import BacktestFill, VenueSettings

__all__ = ["OrderOutcomes", "Working"]

_ZERO = Decimal(0)


@attrs.define
class Working:
    """One of our orders from the moment the engine sent it until it ended."""

    intent: OrderIntent
    sent_ms: int
    order: Order | None = None
    #: lots of the recorded queue ahead of it at its price
    ahead: int = 0
    reported_qty: Decimal = _ZERO
    cancel_sent: bool = False
    #: the cancel is the execution task's, after the confirmation timeout
    timed_out: bool = False


@attrs.define(eq=False)
class OrderOutcomes:
    """Fills (with our fees) and engine events from the matcher's changes."""

    settings: VenueSettings
    #: our orders not ended yet, by orderLinkId (shared with the venue)
    working: dict[str, Working]
    #: when an execution happened (the venue's execution time)
    clock: Callable[[], int]
    #: every execution, in order
    fills: list[BacktestFill] = attrs.field(factory=list)
    realised_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    #: engine events not handed over yet
    events: list[Event] = attrs.field(factory=list)

    def take_changes(self, matcher: Matcher) -> None:
        """The matcher's end-of-operation hook: turn what changed into fills and events."""
        matcher.trades.clear()  # our own taker prints: the recorded tape is the market
        batches, matcher.changes = matcher.changes, {}
        for batch in batches.values():
            for execution in batch.executions:
                self._record(
                    execution.order,
                    execution.price,
                    execution.qty,
                    execution.is_maker,
                    execution.exec_pnl,
                )
            for order in batch.orders.values():
                self._report(order)

    def take_events(self) -> list[Event]:
        """The events since the last call, oldest first."""
        events, self.events = self.events, []
        return events

    def _record(
        self, order: Order, price: Decimal, qty: Decimal, maker: bool, realised: Decimal
    ) -> None:
        settings = self.settings
        fee = price * qty * (settings.maker_fee if maker else settings.taker_fee)
        self.realised_pnl += realised
        self.fees += fee
        self.fills.append(
            BacktestFill(
                t=self.clock(),
                order_link_id=order.order_link_id,
                side=Side.BUY if order.side == "Buy" else Side.SELL,
                qty=qty,
                price=price,
                maker=maker,
                fee=fee,
                reduce_only=order.reduce_only,
                realised=realised,
            )
        )

    def _report(self, order: Order) -> None:
        link = order.order_link_id
        working = self.working.get(link)
        if working is None:
            return  # not ours (a stop's close), or already reported as ended
        cum = order.cum_qty
        avg = order.avg_price if cum > 0 else None
        if order.status == "Filled":
            assert avg is not None
            del self.working[link]
            self.events.append(OrderFilled(order_link_id=link, filled_qty=cum, avg_price=avg))
        elif order.status == "PartiallyFilled" and cum > working.reported_qty:
            assert avg is not None
            working.reported_qty = cum
            self.events.append(
                OrderPartiallyFilled(order_link_id=link, filled_qty=cum, avg_price=avg)
            )
        elif not order.is_open:
            del self.working[link]
            reason = f"{order.status.lower()} ({order.reject_reason})"
            if working.cancel_sent and order.cancel_type == "CancelByUser":
                seconds = self.settings.confirm_timeout_ms / 1000
                reason = (
                    f"not filled within {seconds:g}s: cancelled"
                    if working.timed_out
                    else "cancelled"
                )
            self.events.append(
                OrderFailed(order_link_id=link, reason=reason, filled_qty=cum, avg_price=avg)
            )
