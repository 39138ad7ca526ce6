"""Rounding prices and quantities to an instrument's grid, and checking its limits.

Bybit rejects a price off ``tickSize`` or a quantity off ``qtyStep`` (10001), and a
quantity below ``minOrderQty`` or a notional below ``minNotionalValue`` (110094). We
round before sending, so the exchange never has to refuse our arithmetic:

* quantity is always rounded **down** (never trade more than was sized for);
* a price is rounded to the side's safe direction: a buy limit rounds down and a sell
  limit rounds up, so rounding can never make a passive order cross the book.

All arithmetic is Decimal; a float given here is converted through ``str`` first so
``0.1`` becomes ``Decimal("0.1")`` and not its binary expansion.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import attrs

from .model import Instrument, Side

__all__ = [
    "OrderCheck",
    "check_order",
    "qty_for_notional",
    "round_price",
    "round_qty",
    "to_decimal",
]


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Exact Decimal of a number, going through ``str`` for floats (``0.1`` -> ``0.1``)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _to_grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    steps = (value / step).to_integral_value(rounding=rounding)
    # quantize keeps the step's exponent, so "0.010" never shows up as "0.01000".
    return (steps * step).quantize(step)


def round_qty(instrument: Instrument, qty: Decimal) -> Decimal:
    """Round a quantity down to ``qty_step`` (never up: we do not trade more than sized)."""
    return _to_grid(qty, instrument.qty_step, ROUND_FLOOR)


def round_price(instrument: Instrument, price: Decimal, side: Side | None = None) -> Decimal:
    """Round a price to ``tick_size``: down for a buy, up for a sell, nearest when no side."""
    if side is Side.BUY:
        rounding = ROUND_FLOOR
    elif side is Side.SELL:
        rounding = ROUND_CEILING
    else:
        rounding = ROUND_HALF_EVEN
    return _to_grid(price, instrument.tick_size, rounding)


@attrs.frozen
class OrderCheck:
    """Outcome of ``check_order``: the rounded quantity, or why the order is refused."""

    qty: Decimal
    refusal: str | None = None

    @property
    def ok(self) -> bool:
        """True when the order may be sent."""
        return self.refusal is None


def check_order(
    instrument: Instrument, qty: Decimal, price: Decimal, *, market: bool, reduce_only: bool = False
) -> OrderCheck:
    """Round ``qty`` down and check it against the instrument's limits at ``price``.

    A reduce-only close is exempt from the minimum notional (Bybit lets a position
    be closed whatever its size) but not from the quantity grid.
    """
    rounded = round_qty(instrument, qty)
    cap = instrument.max_mkt_qty if market else instrument.max_qty
    if rounded <= 0 or rounded < instrument.min_qty:
        return OrderCheck(rounded, f"qty {rounded} below min {instrument.min_qty}")
    if rounded > cap:
        return OrderCheck(rounded, f"qty {rounded} above max {cap}")
    notional = rounded * price
    if not reduce_only and notional < instrument.min_notional:
        return OrderCheck(rounded, f"notional {notional} below min {instrument.min_notional}")
    return OrderCheck(rounded)


def qty_for_notional(
    instrument: Instrument, notional_usd: Decimal, price: Decimal, *, market: bool
) -> OrderCheck:
    """Size an order worth ``notional_usd`` at ``price``, rounded down and checked."""
    if price <= 0:
        return OrderCheck(Decimal(0), f"price {price} is not positive")
    return check_order(instrument, notional_usd / price, price, market=market)
