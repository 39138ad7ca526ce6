"""The engine's position and order accounting: sizes, average prices, fees, PnL.

Pure arithmetic over the engine's view of its position and its working order; the
engine calls these and books the results in the day book (``core.pnl.DayBook``).
A close's result is provisional (price PnL minus the entry fee's share and the exit
fee, reported by the exchange or estimated at the taker rate) until the exchange's
closed-PnL row of that order replaces it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

from .model import CancelOrder, OrderIntent, PositionSnapshot, Side
from .pnl import fee_estimate, price_pnl, unrealised_net

__all__ = [
    "CloseFill",
    "Position",
    "Purpose",
    "Working",
    "adopted",
    "apply_close_fill",
    "extra_position",
    "fee_or_estimate",
    "unrealised",
]


@attrs.frozen(kw_only=True)
class Position:
    """The engine's view of the open position (the exchange's wins when they differ)."""

    side: Side
    size: Decimal
    #: average entry price; None until known (e.g. a partial fill reported without price)
    entry_price: Decimal | None
    #: when the engine learnt of it (for max hold)
    opened_ms: int
    #: the entry fee of the open size not yet booked (booked pro rata as it is closed)
    entry_fee: Decimal = Decimal(0)


Purpose = Literal["entry", "close"]


@attrs.define
class Working:
    """The one order the engine has working, and what it has filled so far."""

    intent: OrderIntent
    purpose: Purpose
    filled_qty: Decimal = Decimal(0)
    #: sum of price * qty of the fills so far (exact PnL of partial closes); None when
    #: a fill was reported without a price
    filled_notional: Decimal | None = Decimal(0)
    order_id: str | None = None
    #: cumulative fee the exchange reported for this order (0 = none reported)
    fee: Decimal = Decimal(0)
    #: a close: the position size when it was placed (a larger snapshot is a real extra)
    start_size: Decimal = Decimal(0)

    @property
    def link_id(self) -> str:
        return self.intent.order_link_id

    def cancel(self) -> CancelOrder:
        """The command that cancels this order."""
        return CancelOrder(symbol=self.intent.symbol, order_link_id=self.intent.order_link_id)

    @property
    def avg_price(self) -> Decimal | None:
        if self.filled_qty <= 0 or self.filled_notional is None:
            return None
        return self.filled_notional / self.filled_qty

    def update_fill(self, cum_qty: Decimal, avg_price: Decimal | None) -> Decimal:
        """Record the cumulative fill; return the new quantity (0 if nothing new)."""
        delta = cum_qty - self.filled_qty
        if delta <= 0:
            return Decimal(0)
        if avg_price is not None:
            self.filled_notional = avg_price * cum_qty
        elif self.filled_notional is not None and self.filled_qty > 0:
            # No price given: assume the new part filled at the average so far.
            self.filled_notional = self.filled_notional / self.filled_qty * cum_qty
        else:
            self.filled_notional = None
        self.filled_qty = cum_qty
        return delta


def fee_or_estimate(reported: Decimal, notional: Decimal, rate: Decimal) -> Decimal:
    """The fee the exchange reported, or an estimate at the taker rate when none was."""
    if reported != 0:
        return reported
    return fee_estimate(notional, rate)


def unrealised(position: Position | None, mark: Decimal | None, rate: Decimal) -> Decimal:
    """The open position's part of the day's PnL: price PnL at the mark, net of the
    estimated closing fee and of the entry fee not booked yet."""
    if position is None or position.entry_price is None or mark is None:
        return Decimal(0)
    return (
        unrealised_net(position.side, position.entry_price, mark, position.size, rate)
        - position.entry_fee
    )


@attrs.frozen
class CloseFill:
    """What a close's new cumulative fill did to the position."""

    #: the newly filled quantity (0: nothing new)
    delta: Decimal
    #: the provisional result of that quantity (None when a price was missing)
    pnl: Decimal | None
    #: the position left (None: flat)
    left: Position | None


def apply_close_fill(
    working: Working,
    position: Position | None,
    cum_qty: Decimal,
    avg: Decimal | None,
    cum_fee: Decimal,
    rate: Decimal,
) -> CloseFill:
    """Apply a close's cumulative fill to the order and the position it reduces."""
    before_notional = working.filled_notional
    delta = working.update_fill(cum_qty, avg)
    if delta <= 0 or position is None:
        return CloseFill(delta=Decimal(0), pnl=None, left=position)
    after_notional = working.filled_notional
    entry_share = position.entry_fee * min(delta, position.size) / position.size
    pnl: Decimal | None = None
    if (
        position.entry_price is not None
        and before_notional is not None
        and after_notional is not None
    ):
        exit_notional = after_notional - before_notional
        exit_fee = cum_fee - working.fee if cum_fee != 0 else fee_estimate(exit_notional, rate)
        # (exit notional - entry notional) * sign: price_pnl without dividing
        pnl = (
            price_pnl(position.side, position.entry_price * delta, exit_notional, Decimal(1))
            - entry_share
            - exit_fee
        )
    if cum_fee != 0:
        working.fee = cum_fee
    remaining = position.size - delta
    left = (
        None
        if remaining <= 0
        else attrs.evolve(position, size=remaining, entry_fee=position.entry_fee - entry_share)
    )
    return CloseFill(delta=delta, pnl=pnl, left=left)


def adopted(
    old: Position | None, snapshot: PositionSnapshot, now_ms: int, rate: Decimal
) -> Position:
    """The exchange's position as the engine's: the exchange wins every disagreement."""
    assert snapshot.side is not None
    entry = snapshot.avg_price if snapshot.avg_price > 0 else None
    if old is not None and old.side is snapshot.side:
        # the entry fee follows the size (pro rata); an added part is estimated
        fee = old.entry_fee * min(snapshot.size, old.size) / old.size
        if snapshot.size > old.size and entry is not None:
            fee += fee_estimate((snapshot.size - old.size) * entry, rate)
        return attrs.evolve(
            old, size=snapshot.size, entry_price=entry or old.entry_price, entry_fee=fee
        )
    # An adopted position's entry fee is unknown: estimate it at the taker rate.
    return Position(
        side=snapshot.side,
        size=snapshot.size,
        entry_price=entry,
        opened_ms=now_ms,
        entry_fee=fee_estimate(entry * snapshot.size, rate) if entry is not None else Decimal(0),
    )


def extra_position(
    side: Side, size: Decimal, entry: Decimal, now_ms: int, rate: Decimal
) -> Position:
    """A size a read showed beyond what a close was placed for (its fee estimated)."""
    return Position(
        side=side,
        size=size,
        entry_price=entry if entry > 0 else None,
        opened_ms=now_ms,
        entry_fee=fee_estimate(entry * size, rate),
    )
