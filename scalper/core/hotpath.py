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

from .events import BookUpdate, TradeTicks
from .values import BookTop, Trade, _slot_setters

__all__ = ["book_update", "trade_ticks"]

_NEW = object.__new__
(_SET_TOP,) = _slot_setters(BookUpdate, "top")
_SET_SYMBOL, _SET_TRADES = _slot_setters(TradeTicks, "symbol", "trades")


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
