"""Rounding to the instrument's grid and its limits: never more than sized, never off-grid."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.core.instrument import (
    check_order,
    qty_for_notional,
    round_price,
    round_qty,
    to_decimal,
)
from scalper.core.model import Instrument, Side

SOL = Instrument(
    symbol="SOLUSDT",
    tick_size=Decimal("0.010"),
    qty_step=Decimal("0.1"),
    min_qty=Decimal("0.1"),
    max_qty=Decimal("5000"),
    max_mkt_qty=Decimal("1000"),
    min_notional=Decimal("5"),
)


def test_to_decimal_goes_through_str_for_floats() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(3) == Decimal(3)
    assert to_decimal("1.50") == Decimal("1.50")
    same = Decimal("2.5")
    assert to_decimal(same) is same
    with pytest.raises(TypeError):
        to_decimal(True)


def test_qty_rounds_down_and_keeps_the_step_exponent() -> None:
    assert round_qty(SOL, Decimal("1.99")) == Decimal("1.9")
    assert str(round_qty(SOL, Decimal("2"))) == "2.0"


@pytest.mark.parametrize(
    ("side", "expected"),
    [(Side.BUY, "100.01"), (Side.SELL, "100.02"), (None, "100.02")],
)
def test_price_rounds_to_the_side_that_cannot_cross(side: Side | None, expected: str) -> None:
    assert round_price(SOL, Decimal("100.0150"), side) == Decimal(expected)
    assert str(round_price(SOL, Decimal("100"), side)) == "100.000"


@pytest.mark.parametrize(
    ("qty", "price", "market", "reduce_only", "refusal"),
    [
        (Decimal("0.05"), Decimal("100"), False, False, "qty 0.0 below min 0.1"),
        (Decimal("6000"), Decimal("1"), False, False, "qty 6000.0 above max 5000"),
        (Decimal("1500"), Decimal("1"), True, False, "qty 1500.0 above max 1000"),
        (Decimal("0.1"), Decimal("10"), False, False, "notional 1.0 below min 5"),
        (Decimal("0.1"), Decimal("10"), False, True, None),  # a close may be small
        (Decimal("1.27"), Decimal("10"), True, False, None),
    ],
)
def test_check_order_limits(
    qty: Decimal, price: Decimal, market: bool, reduce_only: bool, refusal: str | None
) -> None:
    check = check_order(SOL, qty, price, market=market, reduce_only=reduce_only)
    assert check.refusal == refusal
    assert check.ok is (refusal is None)


def test_qty_for_notional_sizes_down_and_refuses_a_bad_price() -> None:
    assert qty_for_notional(SOL, Decimal(1000), Decimal("151.37"), market=True).qty == Decimal(
        "6.6"
    )
    bad = qty_for_notional(SOL, Decimal(1000), Decimal(0), market=True)
    assert not bad.ok
    assert bad.refusal == "price 0 is not positive"


steps = st.sampled_from(
    [Decimal("0.001"), Decimal("0.1"), Decimal("1"), Decimal("0.00001"), Decimal("5")]
)
amounts = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=7)


# no per-example deadline: a loaded machine (coverage, other jobs) can stretch one
# example past hypothesis's default 200 ms, which says nothing about the code
@settings(deadline=None)
@given(
    step=steps,
    tick=steps,
    qty=amounts,
    price=amounts,
    side=st.sampled_from([Side.BUY, Side.SELL, None]),
)
def test_rounding_lands_on_the_grid_and_within_limits(
    step: Decimal, tick: Decimal, qty: Decimal, price: Decimal, side: Side | None
) -> None:
    inst = Instrument(
        symbol="X",
        tick_size=tick,
        qty_step=step,
        min_qty=step,
        max_qty=Decimal(10**6),
        max_mkt_qty=Decimal(10**5),
        min_notional=Decimal(5),
    )
    rounded = round_qty(inst, qty)
    assert rounded % step == 0
    assert 0 <= qty - rounded < step  # down, by less than one step
    p = round_price(inst, price, side)
    assert p % tick == 0
    assert abs(p - price) <= tick
    if side is Side.BUY:
        assert p <= price
    elif side is Side.SELL:
        assert p >= price
    check = check_order(inst, qty, price, market=True)
    if check.ok:
        assert inst.min_qty <= check.qty <= inst.max_mkt_qty
        assert check.qty * price >= inst.min_notional
        assert type(check.qty) is Decimal
