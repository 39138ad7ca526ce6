"""The hot-path builders ``book_top`` and ``trade`` make exactly the value the keyword
constructor makes: equal, same hash and repr, and just as frozen afterwards."""

from __future__ import annotations

import attrs
import pytest

from scalper.core.values import BookTop, Side, Trade, book_top, trade


def test_book_top_is_the_same_frozen_value_as_the_constructor_builds() -> None:
    for valid in (True, False):
        fast = book_top("SOLUSDT", 150.01, 2.5, 150.02, 7.0, 1_700_000_000_123, valid)
        slow = BookTop(
            symbol="SOLUSDT",
            bid=150.01,
            bid_size=2.5,
            ask=150.02,
            ask_size=7.0,
            ts_ms=1_700_000_000_123,
            valid=valid,
        )
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert fast.spread_bps == slow.spread_bps
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            fast.bid = 1.0  # type: ignore[misc]
    assert book_top("X", 1.0, 1.0, 2.0, 1.0, 5, True) != book_top("X", 1.0, 1.0, 2.0, 1.0, 6, True)


def test_trade_is_the_same_frozen_value_as_the_constructor_builds() -> None:
    fast = trade("SOLUSDT", 150.0, 0.3, Side.SELL, 42)
    slow = Trade(symbol="SOLUSDT", price=150.0, qty=0.3, side=Side.SELL, ts_ms=42)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.qty = 1.0  # type: ignore[misc]
