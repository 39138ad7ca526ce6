"""The local L2 order book of one symbol, fed Bybit's snapshots and deltas.

Rules (Bybit's ``websocket/public/orderbook.mdx``, plus our integrity checks):

* A **snapshot** replaces the whole book. A message with ``u == 1`` is a snapshot
  whatever its type (Bybit restarted its service). Depth 1 re-pushes the same
  snapshot with the same ``u`` every 3 s when nothing changed, so a snapshot with an
  *equal* ``u`` is accepted.
* A **delta** level ``[price, size]``: size ``"0"`` deletes the level (a delete of an
  unknown price is ignored: it left our depth), an unknown price inserts, a known
  price overwrites the size.
* The book turns **invalid**, with a reason, on: a delta before any snapshot, an
  update id going backwards (a delta whose ``u`` does not increase, or a snapshot whose
  ``u`` decreases, other than ``u == 1``), a crossed book (best bid >= best ask), or a
  malformed level (bad number, price off the tick grid). It stays invalid, dropping
  deltas, until the next snapshot; the caller resubscribes when an ``apply*`` call
  returns ``BookStatus.INVALIDATED``.

Hot path: prices stay exact without Decimal (a Decimal per level cost more than the rest
of applying a delta). A price string is read once to an integer count of ticks by
``core.levels`` (cached per string, since the same prices recur all the time); sizes are
floats, read by the decoder in C or here from their strings. Each side keeps a dict
``ticks -> size`` plus a sorted list of keys maintained with ``bisect``; the book is
never sorted per update. Keys are signed so that the best level of *both* sides sits at
the end of its list: bids store ``ticks``, asks store ``-ticks``. Inserting or deleting
near the top therefore moves few elements, and the best level is ``keys[-1]``.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Iterable
from decimal import Decimal
from typing import Literal, TypeVar

from .levels import Level, TickGrid, parse_size, reason
from .model import BookTop, Side
from .values import book_top

__all__ = ["BookStatus", "Level", "OrderBook"]

_T = TypeVar("_T")
_NO_SNAPSHOT = "no snapshot yet"
_INF = float("inf")
#: Bound on the per-book cache of parsed price strings (cleared when it fills up).
_CACHE_MAX = 1 << 16


class BookStatus(enum.Enum):
    """What happened to the book when a message was applied."""

    OK = "ok"  #: applied; the book is valid
    INVALIDATED = "invalidated"  #: this message made the book invalid: resubscribe
    INVALID = "invalid"  #: already invalid; message dropped until the next snapshot


# Module constants: reading a member off an Enum class is a metaclass attribute lookup
# (~0.08 us in CPython 3.11, a global read is a tenth of it), and ``apply`` returns one
# per frame.
_OK = BookStatus.OK
_INVALIDATED = BookStatus.INVALIDATED
_INVALID = BookStatus.INVALID


class OrderBook:
    """L2 book of one symbol with exact integer-tick prices and incremental best levels.

    ``tick_size`` is the instrument's ``tickSize`` (Decimal or its string). Prices
    are returned as floats converted from the exact tick count (correctly rounded,
    so ``"0.3"`` reads back as ``0.3``), sizes as floats.
    """

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "_cache",
        "_grid",
        "_scale",
        "_tick_units",
        "invalid_reason",
        "symbol",
        "ts_ms",
        "update_id",
    )

    def __init__(self, symbol: str, tick_size: Decimal | str) -> None:
        tick = Decimal(tick_size)
        if not tick.is_finite() or tick <= 0:
            raise ValueError(f"tick_size must be a positive number, got {tick_size!r}")
        exponent = tick.as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked above
        digits = max(0, -exponent)
        #: prices are parsed to "units" of 10**-digits, then divided by the tick in units
        self._scale: int = 10**digits
        self._tick_units = int(tick * self._scale)
        self._grid = TickGrid(digits, self._tick_units)
        self.symbol = symbol
        #: ``u`` of the last applied message (None before the first snapshot)
        self.update_id: int | None = None
        #: exchange timestamp (ms) of the last applied message
        self.ts_ms = 0
        #: why the book is invalid, or None when it is valid
        self.invalid_reason: str | None = _NO_SNAPSHOT
        self._bids: dict[int, float] = {}
        self._asks: dict[int, float] = {}
        self._bid_keys: list[int] = []  # ticks, ascending: best bid last
        self._ask_keys: list[int] = []  # -ticks, ascending: best ask last
        self._cache: dict[str, int] = {}

    # ------------------------------------------------------------ state

    @property
    def valid(self) -> bool:
        """True when the book reflects the exchange's (a snapshot and clean deltas since)."""
        return self.invalid_reason is None

    def invalidate(self, reason: str) -> None:
        """Mark the book invalid (e.g. the stream reconnected); the next snapshot repairs it."""
        self.invalid_reason = reason

    # ------------------------------------------------------------ applying

    def apply(
        self,
        msg_type: str,
        bids: Collection[Level],
        asks: Collection[Level],
        update_id: int,
        ts_ms: int,
    ) -> BookStatus:
        """Apply a message by its wire type, ``"snapshot"`` or ``"delta"``.

        The common case (a delta with ``u`` > 1 on a valid book) is handled inline here,
        with the same rules as ``apply_delta``: this is called once per frame.
        """
        if msg_type == "delta":
            last = self.update_id
            if update_id == 1 or self.invalid_reason is not None or last is None:
                return self.apply_delta(bids, asks, update_id, ts_ms)
            if update_id <= last:
                return self._fail(f"update id went backwards: u={update_id} after {last}")
            try:
                if bids:
                    self._merge(self._bids, self._bid_keys, bids, 1)
                if asks:
                    self._merge(self._asks, self._ask_keys, asks, -1)
            except (ValueError, TypeError) as exc:
                return self._fail(reason(exc))
            self.update_id = update_id
            self.ts_ms = ts_ms
            bid_keys = self._bid_keys
            ask_keys = self._ask_keys
            if bid_keys and ask_keys and bid_keys[-1] >= -ask_keys[-1]:
                return self._check_crossed()
            return _OK
        if msg_type == "snapshot":
            return self.apply_snapshot(bids, asks, update_id, ts_ms)
        return self._fail(f"unknown message type {msg_type!r}")

    def apply_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], update_id: int, ts_ms: int
    ) -> BookStatus:
        """Replace the whole book.

        A valid book refuses a snapshot whose ``u`` went backwards (other than ``u == 1``):
        that is a stale message. An invalid book takes any snapshot: it is the repair.
        """
        if (
            self.invalid_reason is None
            and self.update_id is not None
            and update_id < self.update_id
            and update_id != 1
        ):
            return self._fail(
                f"snapshot update id went backwards: u={update_id} after {self.update_id}"
            )
        new_bids: dict[int, float] = {}
        new_asks: dict[int, float] = {}
        try:
            self._fill(new_bids, bids)
            self._fill(new_asks, asks)
        except (ValueError, TypeError) as exc:
            # The repair itself failed: drop the book and say so (the caller asks again).
            self._bids, self._asks, self._bid_keys, self._ask_keys = {}, {}, [], []
            self.update_id = update_id
            self.invalid_reason = reason(exc)
            return _INVALIDATED
        self._bids = new_bids
        self._asks = new_asks
        self._bid_keys = sorted(new_bids)
        self._ask_keys = sorted([-t for t in new_asks])
        self.update_id = update_id
        self.ts_ms = ts_ms
        self.invalid_reason = None
        return self._check_crossed()

    def apply_delta(
        self, bids: Iterable[Level], asks: Iterable[Level], update_id: int, ts_ms: int
    ) -> BookStatus:
        """Apply changed levels; ``u == 1`` makes it a snapshot."""
        if update_id == 1:
            return self.apply_snapshot(bids, asks, update_id, ts_ms)
        if self.invalid_reason is not None:
            if self.update_id is None:
                return self._fail("delta before snapshot")
            return _INVALID  # dropped: waiting for the repairing snapshot
        last = self.update_id
        assert last is not None  # a valid book has had a snapshot
        if update_id <= last:
            return self._fail(f"update id went backwards: u={update_id} after {last}")
        try:
            self._merge(self._bids, self._bid_keys, bids, 1)
            self._merge(self._asks, self._ask_keys, asks, -1)
        except (ValueError, TypeError) as exc:
            return self._fail(reason(exc))
        self.update_id = update_id
        self.ts_ms = ts_ms
        return self._check_crossed()

    def _fail(self, reason: str) -> BookStatus:
        """Turn invalid; report INVALIDATED only on the change, so the caller asks once."""
        if self.invalid_reason is None or self.invalid_reason is _NO_SNAPSHOT:
            self.invalid_reason = reason
            return _INVALIDATED
        return _INVALID  # keep the first reason: it is the cause

    def _check_crossed(self) -> BookStatus:
        bid_keys = self._bid_keys
        ask_keys = self._ask_keys
        if bid_keys and ask_keys and bid_keys[-1] >= -ask_keys[-1]:
            bid = self._price(bid_keys[-1])
            ask = self._price(-ask_keys[-1])
            self.invalid_reason = f"crossed book: best bid {bid} >= best ask {ask}"
            return _INVALIDATED
        return _OK

    def _fill(self, side: dict[int, float], levels: Iterable[Level]) -> None:
        for price, size in levels:  # a snapshot: rare, so one call per level is fine
            ticks, checked = self._read_level(price, size)
            if checked > 0.0:
                side[ticks] = checked
            else:
                side.pop(ticks, None)

    def _read_level(self, price: str, size: str | float) -> tuple[int, float]:
        """A level as ``(ticks, size)``: the price through the cache, the size checked
        (``_merge`` spells the same out inline: it runs for every delta's levels)."""
        ticks = self._cache.get(price)
        if ticks is None:
            ticks = self._parse_price(price)
        if type(size) is not float or not 0.0 <= size < _INF:
            size = parse_size(size)
        return ticks, size

    def _merge(
        self, side: dict[int, float], keys: list[int], levels: Iterable[Level], sign: int
    ) -> None:
        # The hot loop: one dict lookup turns the price string into ticks (cached: prices
        # recur near the mid). A size the decoder read already is a float: only its range
        # is checked here; a string (or anything else) goes through ``parse_size``, which
        # reads it and refuses what is not finite and >= 0, a float too, with the same
        # reason. Sizes are not cached: a real book's sizes rarely repeat. The sorted key
        # list moves only when a level appears or disappears. (No bound ``.get`` kept in
        # a local: a delta has one to three levels, and binding allocates a method object
        # per call.)
        cache = self._cache
        for price, size in levels:
            ticks = cache.get(price)
            if ticks is None:
                ticks = self._parse_price(price)
            if type(size) is not float or not 0.0 <= size < _INF:
                size = parse_size(size)
            if size:  # a checked size is finite and >= 0: positive sets, zero deletes
                if ticks not in side:
                    insort(keys, sign * ticks)
                side[ticks] = size
            elif side.pop(ticks, None) is not None:
                del keys[bisect_left(keys, sign * ticks)]

    def _parse_price(self, price: str) -> int:
        """Exact tick count of a price string (slow path; the result is cached)."""
        ticks = self._grid.ticks(price)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[price] = ticks
        return ticks

    # ------------------------------------------------------------ reading

    def _price(self, ticks: int) -> float:
        # int / int is correctly rounded: the float nearest the exact decimal price.
        return ticks * self._tick_units / self._scale

    def best_bid(self) -> tuple[float, float] | None:
        """``(price, size)`` of the best bid, or None when there are no bids."""
        keys = self._bid_keys
        if not keys:
            return None
        ticks = keys[-1]
        return self._price(ticks), self._bids[ticks]

    def best_ask(self) -> tuple[float, float] | None:
        """``(price, size)`` of the best ask, or None when there are no asks."""
        keys = self._ask_keys
        if not keys:
            return None
        ticks = -keys[-1]
        return self._price(ticks), self._asks[ticks]

    def spread_bps(self) -> float | None:
        """Spread in basis points of the mid, or None while a side is empty."""
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        mid = (bid[0] + ask[0]) / 2.0
        return (ask[0] - bid[0]) / mid * 10_000.0

    def top(self) -> BookTop | None:
        """Top of the book for the strategy (``valid`` flags integrity); None if a side is empty.

        An invalid book still reports its last levels, flagged ``valid=False``: entries
        are gated on validity, exits may still want a price.
        """
        return self.top_as(book_top)

    def top_as(
        self, build: Callable[[str, float, float, float, float, int, bool], _T]
    ) -> _T | None:
        """``top()``'s fields given to ``build`` (``BookTop``'s field order), or None if a
        side is empty: the stream builds its event of the top in the same call."""
        # Inlined best_bid/best_ask: called once per frame, so no tuples in between.
        bid_keys = self._bid_keys
        ask_keys = self._ask_keys
        if not bid_keys or not ask_keys:
            return None
        bid = bid_keys[-1]
        ask = -ask_keys[-1]
        unit, scale = self._tick_units, self._scale
        return build(
            self.symbol,
            bid * unit / scale,
            self._bids[bid],
            ask * unit / scale,
            self._asks[ask],
            self.ts_ms,
            self.invalid_reason is None,
        )

    def levels(
        self, side: Side | Literal["bid", "ask"], depth: int | None = None
    ) -> list[tuple[float, float]]:
        """``(price, size)`` levels of one side, best first, at most ``depth`` of them.

        ``Side.BUY`` / ``"bid"`` are the bids, ``Side.SELL`` / ``"ask"`` the asks.
        Not for the hot path: it builds a list.
        """
        if side is Side.BUY or side == "bid":
            keys, book, sign = self._bid_keys, self._bids, 1
        elif side is Side.SELL or side == "ask":
            keys, book, sign = self._ask_keys, self._asks, -1
        else:
            raise ValueError(f"side must be Side or 'bid'/'ask', got {side!r}")
        count = len(keys) if depth is None else min(depth, len(keys))
        out: list[tuple[float, float]] = []
        for i in range(1, count + 1):
            ticks = sign * keys[-i]
            out.append((self._price(ticks), book[ticks]))
        return out

    def __repr__(self) -> str:
        state = "valid" if self.valid else f"invalid: {self.invalid_reason}"
        return (
            f"OrderBook({self.symbol}, u={self.update_id}, {len(self._bids)} bids, "
            f"{len(self._asks)} asks, {state})"
        )
