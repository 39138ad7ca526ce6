"""The hot-path builders ``book_top``, ``trade``, ``book_event``, ``book_update`` and
``trade_ticks`` make exactly the value the keyword constructor makes: equal, same hash
and repr, and just as frozen afterwards; and the classes they build have nothing such a
builder would skip."""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any

import attrs
import pytest

from scalper.core.book import OrderBook
from scalper.core.hotpath import book_event, book_update, trade_ticks
from scalper.core.model import BookUpdate, TradeTicks
from scalper.core.values import BookTop, Side, Trade, book_top, trade

_TOP_FIELDS = tuple(field.name for field in attrs.fields(BookTop))


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


def test_book_update_and_trade_ticks_are_the_constructors_values() -> None:
    top = book_top("SOLUSDT", 150.01, 2.5, 150.02, 7.0, 5, True)
    fast, slow = book_update(top), BookUpdate(top=top)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast.top is top
    trades = (trade("SOLUSDT", 150.0, 0.3, Side.SELL, 42),)
    fast_ticks, slow_ticks = (
        trade_ticks("SOLUSDT", trades),
        TradeTicks(symbol="SOLUSDT", trades=trades),
    )
    assert fast_ticks == slow_ticks and repr(fast_ticks) == repr(slow_ticks)
    assert book_update(top) != BookUpdate(top=book_top("X", 1.0, 1.0, 2.0, 1.0, 5, True))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.top = top  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast_ticks.symbol = "X"  # type: ignore[misc]


@pytest.mark.parametrize("cls", [BookTop, Trade, BookUpdate, TradeTicks])
def test_the_built_classes_have_no_validator_converter_or_post_init(cls: type) -> None:
    """A builder sets the slots directly: a check added to one of these classes would be
    skipped on the hot path, so adding one must fail here first."""
    for field in attrs.fields(cls):
        assert field.validator is None and field.converter is None, field.name
    assert not hasattr(cls, "__attrs_post_init__")
    assert not hasattr(cls, "__attrs_pre_init__")


def test_the_builders_take_the_fields_in_order_and_build_the_class_itself() -> None:
    """``book_top`` and ``trade`` are generated from the fields: positional in the
    fields' order (a reordered class must not swap two floats silently), and the value
    is of the class itself (a subclass would compare unequal to the constructor's)."""
    builders: list[tuple[Any, type]] = [
        (book_top, BookTop),
        (trade, Trade),
        (book_update, BookUpdate),
        (trade_ticks, TradeTicks),
    ]
    for builder, cls in builders:
        names = [field.name for field in attrs.fields(cls)]
        assert list(inspect.signature(builder).parameters) == names
    top = book_top("SOLUSDT", 150.01, 2.5, 150.02, 7.0, 5, True)
    tick = trade("SOLUSDT", 150.0, 0.3, Side.BUY, 42)
    assert type(top) is BookTop and type(tick) is Trade
    assert type(book_update(top)) is BookUpdate
    assert type(trade_ticks("SOLUSDT", (tick,))) is TradeTicks
    slow = BookTop(symbol="SOLUSDT", bid=150.01, bid_size=2.5, ask=150.02, ask_size=7.0, ts_ms=5)
    assert {top: 1}[slow] == 1


def test_book_event_is_the_update_of_the_top_the_constructors_build() -> None:
    fields: dict[str, Any] = dict(symbol="S", bid=150.01, bid_size=2.5, ask=150.02, ask_size=7.0)
    for valid in (True, False):
        fast = book_event("S", 150.01, 2.5, 150.02, 7.0, 1_700_000_000_123, valid)
        slow = BookUpdate(top=BookTop(**fields, ts_ms=1_700_000_000_123, valid=valid))
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert type(fast) is BookUpdate and type(fast.top) is BookTop
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            fast.top = slow.top  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            fast.top.ask = 1.0  # type: ignore[misc]
    assert list(inspect.signature(book_event).parameters) == list(_TOP_FIELDS)


def test_a_books_top_as_an_event_is_the_update_of_its_top() -> None:
    book = OrderBook("SOLUSDT", "0.01")
    assert book.top_as(book_event) is None  # no sides yet
    book.apply("snapshot", [("150.01", 2.5)], [("150.03", "7")], 5, 1_700_000_000_123)
    top = book.top()
    assert top is not None and book.top_as(book_event) == BookUpdate(top=top)
    book.invalidate("test")
    event, invalid = book.top_as(book_event), book.top()
    assert event is not None and invalid is not None and not invalid.valid
    assert event == BookUpdate(top=invalid)


def test_the_built_values_pickle_copy_and_evolve_as_the_constructors() -> None:
    """The recorder and the journal copy and serialise these values: a built one goes
    through pickle, copy and ``attrs.evolve`` as the constructor's does."""
    event = book_event("SOLUSDT", 150.01, 2.5, 150.02, 7.0, 5, True)
    ticks = trade_ticks("SOLUSDT", (trade("SOLUSDT", 150.0, 0.3, Side.SELL, 42),))
    for value in (event, event.top, ticks, ticks.trades[0]):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value and copy.deepcopy(value) == value
        assert attrs.evolve(value) == value and type(attrs.evolve(value)) is type(value)
