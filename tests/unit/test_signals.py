"""Signal window: VWAP, momentum, readiness, eviction and reset."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.core.model import Side, Trade
from scalper.core.signals import SignalWindow


def test_vwap_and_momentum_match_the_definition() -> None:
    w = SignalWindow(window=4, min_ticks=3)
    w.add(100.0, 1.0)
    w.add(102.0, 3.0)
    assert (w.ready, w.momentum) == (False, None)
    w.add(101.0, 2.0)
    vwap = (100 * 1 + 102 * 3 + 101 * 2) / 6
    assert w.ready
    assert w.vwap == pytest.approx(vwap)
    assert w.momentum == pytest.approx((101.0 - vwap) / vwap)
    assert w.last_price == 101.0
    assert w.count == 3


def test_window_evicts_oldest_trade() -> None:
    w = SignalWindow(window=2, min_ticks=1)
    w.add(10.0, 1.0)
    w.add(20.0, 1.0)
    w.add(30.0, 1.0)
    assert w.count == 2
    assert w.vwap == pytest.approx(25.0)


def test_reset_forgets_everything() -> None:
    w = SignalWindow(window=3, min_ticks=1)
    w.add(10.0, 1.0)
    w.reset()
    assert w.count == 0
    assert w.vwap is None
    assert w.last_price is None
    assert w.momentum is None
    assert not w.ready


def test_zero_volume_has_no_vwap_nor_momentum() -> None:
    w = SignalWindow(window=3, min_ticks=1)
    w.add(10.0, 0.0)
    assert w.ready
    assert w.vwap is None
    assert w.momentum is None


def test_add_trades_takes_public_trades_in_order() -> None:
    w = SignalWindow(window=10, min_ticks=2)
    w.add_trades(
        [
            Trade(symbol="X", price=1.0, qty=1.0, side=Side.BUY, ts_ms=1),
            Trade(symbol="X", price=3.0, qty=1.0, side=Side.SELL, ts_ms=2),
        ]
    )
    assert w.last_price == 3.0
    assert w.momentum == pytest.approx(0.5)


@pytest.mark.parametrize(("window", "min_ticks"), [(0, 1), (5, 0), (5, 6)])
def test_bad_parameters_are_refused(window: int, min_ticks: int) -> None:
    with pytest.raises(ValueError):
        SignalWindow(window=window, min_ticks=min_ticks)


# no per-example deadline: a loaded machine (coverage, other jobs) can stretch one
# example past hypothesis's default 200 ms, which says nothing about the code
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.01, max_value=1e6),
            st.floats(min_value=0.001, max_value=1e4),
        ),
        min_size=1,
        max_size=400,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_running_sums_equal_a_recomputation(trades: list[tuple[float, float]], window: int) -> None:
    w = SignalWindow(window=window, min_ticks=1)
    for price, qty in trades:
        w.add(price, qty)
    last = trades[-window:]
    expected = math.fsum(p * q for p, q in last) / math.fsum(q for _, q in last)
    assert w.count == len(last)
    assert w.vwap is not None
    assert w.vwap == pytest.approx(expected, rel=1e-6)
