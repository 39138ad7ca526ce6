"""The market-data events built for the hot path: ``BookUpdate`` and ``TradeTicks``.

Every book frame becomes a ``BookUpdate`` and every trade frame a ``TradeTicks``, so
their construction is paid once per message. attrs' frozen ``__init__`` sets each field
through the frozen class's ``object.__setattr__`` (0.3 us for ``BookUpdate``'s one
field); setting the slot directly builds the same frozen value (equal, hashable,
immutable afterwards) in half of that. (``values.book_top``'s draft, turned into the
class, measured no faster for one or two fields.) Valid only while the classes have no
validator, converter or post-init: a test checks that.
"""

from __future__ import annotations

from collections.abc import Callable

from .events import BookUpdate, TradeTicks
from .values import BookTop, Trade, _builder, _slot_setters

__all__ = ["book_event", "book_update", "trade_ticks"]

_NEW = object.__new__
(_SET_TOP,) = _slot_setters(BookUpdate, "top")
_SET_SYMBOL, _SET_TRADES = _slot_setters(TradeTicks, "symbol", "trades")


#: ``book_event(symbol, bid, bid_size, ask, ask_size, ts_ms, valid)``: the
#: ``BookUpdate`` of a new top in one call (``BookTop``'s builder, then the event's slot:
#: the stream's book builds one per frame)
book_event: Callable[[str, float, float, float, float, int, bool], BookUpdate] = _builder(
    BookTop, into=BookUpdate
)


def book_update(top: BookTop) -> BookUpdate:
    """``BookUpdate(top=top)``, built by slot."""
    event = _NEW(BookUpdate)
    _SET_TOP(event, top)
    return event


def trade_ticks(symbol: str, trades: tuple[Trade, ...]) -> TradeTicks:
    """``TradeTicks(symbol=symbol, trades=trades)``, built by slot."""
    event = _NEW(TradeTicks)
    _SET_SYMBOL(event, symbol)
    _SET_TRADES(event, trades)
    return event
