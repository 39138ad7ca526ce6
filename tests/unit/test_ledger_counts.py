"""The ledger's running round-trip counts equal what its report computes.

The live bot reads them after every fill (the panel's trades and win rate), so they
are kept as trips close instead of building a report per fill.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalper.core.pnl import Fill, Ledger

_fill = st.tuples(
    st.sampled_from(["Buy", "Sell"]),
    st.integers(1, 30).map(Decimal),
    st.integers(90, 110).map(Decimal),
    st.sampled_from(["0", "0.01", "0.5"]).map(Decimal),
)


@given(st.lists(_fill, max_size=40))
def test_running_counts_equal_the_report(
    fills: list[tuple[str, Decimal, Decimal, Decimal]],
) -> None:
    ledger = Ledger()
    for n, (side, qty, price, fee) in enumerate(fills):
        ledger.add(Fill(ts_ms=n, symbol="SOLUSDT", side=side, qty=qty, price=price, fee=fee))
        report = ledger.report()
        assert ledger.trip_count == len(report.trips)
        assert ledger.wins == report.wins


def test_a_winning_and_a_losing_round_trip() -> None:
    ledger = Ledger()
    for side, price in [("Buy", "100"), ("Sell", "101"), ("Sell", "100"), ("Buy", "102")]:
        ledger.add(Fill(ts_ms=0, symbol="X", side=side, qty=Decimal(1), price=Decimal(price)))
    assert (ledger.trip_count, ledger.wins) == (2, 1)


@given(st.lists(_fill, max_size=40), st.integers(1, 5))
def test_a_bounded_ledger_keeps_exact_totals_and_the_newest_history(
    fills: list[tuple[str, Decimal, Decimal, Decimal]], history: int
) -> None:
    # the live bot's tracker runs for months: it keeps the newest trips only, but its
    # net, fees, counts and wins are those of every fill
    full, bounded = Ledger(), Ledger(history=history)
    for n, (side, qty, price, fee) in enumerate(fills):
        fill = Fill(ts_ms=n, symbol="SOLUSDT", side=side, qty=qty, price=price, fee=fee)
        full.add(fill)
        bounded.add(fill)
    assert (bounded.net, bounded.fees, bounded.realised) == (full.net, full.fees, full.realised)
    assert (bounded.trip_count, bounded.wins) == (full.trip_count, full.wins)
    assert bounded.trips == full.trips[-history:]
    kept = bounded.report()
    assert kept.fills == full.report().fills[-history:]
    assert len(kept.equity) == min(history, len(fills))


def test_a_ledger_history_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="history must be >= 1 or None, got 0"):
        Ledger(history=0)
