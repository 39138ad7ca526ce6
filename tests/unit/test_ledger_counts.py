"""The ledger's running round-trip counts equal what its report computes.

The live bot reads them after every fill (the panel's trades and win rate), so they
are kept as trips close instead of building a report per fill.
"""

from __future__ import annotations

from decimal import Decimal

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
