"""The market-data events built for the hot path: ``BookUpdate`` and ``TradeTicks``.

Every book frame becomes a ``BookUpdate`` and every trade frame a ``TradeTicks``, so
their construction is paid once per message. attrs' frozen ``__init__`` sets each field
through the frozen class's ``object.__setattr__`` (0.3 us for ``BookUpdate``'s one
field); the builders of ``values._builder`` (a draft of the same slots turned into the
class) build the same frozen value in 0.12 us, and ``book_event`` builds the top and its
event in one call. Valid only while the classes have no validator, converter or
post-init: a test checks that.
"""

from __future__ import annotations

from collections.abc import Callable

from .events import BookUpdate, TradeTicks
from .values import BookTop, Trade, _builder

__all__ = ["book_event", "book_update", "trade_ticks"]

#: ``book_event(symbol, bid, bid_size, ask, ask_size, ts_ms, valid)``: the
#: ``BookUpdate`` of a new top in one call (the stream's book builds one per frame)
book_event: Callable[[str, float, float, float, float, int, bool], BookUpdate] = _builder(
    BookTop, into=BookUpdate
)
#: ``book_update(top)``: ``BookUpdate(top=top)``
book_update: Callable[[BookTop], BookUpdate] = _builder(BookUpdate)
#: ``trade_ticks(symbol, trades)``: ``TradeTicks(symbol=symbol, trades=trades)`` (the
#: decoder builds one per trade frame)
trade_ticks: Callable[[str, tuple[Trade, ...]], TradeTicks] = _builder(TradeTicks)
