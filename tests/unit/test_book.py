"""The L2 order book: each of Bybit's rules, our integrity checks, and a naive reference."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.core import book as book_module
from scalper.core.book import BookStatus, Level, OrderBook
from scalper.core.levels import BadLevel
from scalper.core.model import BookTop, Side

OK = BookStatus.OK
INVALIDATED = BookStatus.INVALIDATED
INVALID = BookStatus.INVALID


def make_book(tick: str = "0.05") -> OrderBook:
    return OrderBook("BTCUSDT", Decimal(tick))


def seeded(tick: str = "0.05") -> OrderBook:
    book = make_book(tick)
    status = book.apply_snapshot(
        [["100.0", "1"], ["99.9", "2"], ["99.5", "3"]],
        [["100.1", "4"], ["100.2", "5"], ["101", "6"]],
        10,
        1_000,
    )
    assert status is OK
    return book


# ---------------------------------------------------------------- snapshots


def test_new_book_is_invalid_and_empty() -> None:
    book = make_book()
    assert not book.valid
    assert book.invalid_reason == "no snapshot yet"
    assert book.update_id is None
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.spread_bps() is None
    assert book.top() is None


def test_snapshot_fills_both_sides_best_first() -> None:
    book = seeded()
    assert book.valid and book.invalid_reason is None
    assert book.update_id == 10
    assert book.ts_ms == 1_000
    assert book.levels(Side.BUY, 10) == [(100.0, 1.0), (99.9, 2.0), (99.5, 3.0)]
    assert book.levels("ask", 2) == [(100.1, 4.0), (100.2, 5.0)]
    assert book.levels("bid") == book.levels(Side.BUY, 3)
    assert book.levels(Side.SELL, 0) == []
    assert book.best_bid() == (100.0, 1.0)
    assert book.best_ask() == (100.1, 4.0)


def test_snapshot_replaces_the_whole_book() -> None:
    book = seeded()
    assert book.apply_snapshot([["50", "1"]], [["51", "2"]], 11, 2_000) is OK
    assert book.levels(Side.BUY, 10) == [(50.0, 1.0)]
    assert book.levels(Side.SELL, 10) == [(51.0, 2.0)]
    assert book.update_id == 11


def test_snapshot_skips_zero_sizes() -> None:
    book = make_book()
    assert book.apply_snapshot([["10", "1"], ["9", "0"]], [["11", "0"]], 5, 0) is OK
    assert book.levels(Side.BUY, 10) == [(10.0, 1.0)]
    assert book.levels(Side.SELL, 10) == []
    assert book.top() is None  # one side empty


def test_snapshot_with_equal_update_id_is_accepted() -> None:
    # Depth 1 re-pushes the same snapshot with the same u every 3 s.
    book = seeded()
    assert book.apply_snapshot([["100.0", "7"]], [["100.1", "8"]], 10, 4_000) is OK
    assert book.valid
    assert book.best_bid() == (100.0, 7.0)
    assert book.ts_ms == 4_000


def test_snapshot_going_backwards_invalidates_and_is_not_applied() -> None:
    book = seeded()
    assert book.apply_snapshot([["1", "1"]], [["2", "1"]], 9, 2_000) is INVALIDATED
    assert not book.valid
    assert book.invalid_reason == "snapshot update id went backwards: u=9 after 10"
    assert book.best_bid() == (100.0, 1.0)  # unchanged
    # the next snapshot repairs it, whatever its u
    assert book.apply_snapshot([["1", "1"]], [["2", "1"]], 9, 2_000) is OK
    assert book.valid


def test_snapshot_with_u_1_resets_after_higher_ids() -> None:
    book = seeded()
    assert book.apply_snapshot([["1", "1"]], [["2", "1"]], 1, 2_000) is OK
    assert book.valid and book.update_id == 1
    assert book.apply_delta([["1.5", "1"]], [], 2, 2_001) is OK
    assert book.best_bid() == (1.5, 1.0)


def test_delta_with_u_1_is_a_snapshot() -> None:
    book = seeded()
    assert book.apply_delta([["1", "1"]], [["2", "1"]], 1, 2_000) is OK
    assert book.levels(Side.BUY, 10) == [(1.0, 1.0)]
    assert book.levels(Side.SELL, 10) == [(2.0, 1.0)]
    assert book.update_id == 1


def test_delta_with_u_1_repairs_an_invalid_book() -> None:
    book = make_book()
    assert book.apply_delta([["1", "1"]], [["2", "1"]], 1, 0) is OK
    assert book.valid


# ---------------------------------------------------------------- deltas


def test_delta_inserts_overwrites_and_deletes() -> None:
    book = seeded()
    status = book.apply_delta(
        [["99.95", "9"], ["100.0", "1.5"], ["99.9", "0"]],
        [["100.1", "0"], ["100.15", "2"]],
        11,
        1_100,
    )
    assert status is OK
    assert book.levels(Side.BUY, 10) == [(100.0, 1.5), (99.95, 9.0), (99.5, 3.0)]
    assert book.levels(Side.SELL, 10) == [(100.15, 2.0), (100.2, 5.0), (101.0, 6.0)]
    assert book.update_id == 11
    assert book.ts_ms == 1_100


def test_deleting_the_best_levels_moves_the_top() -> None:
    book = seeded()
    assert book.apply_delta([["100", "0"]], [["100.1", "0"]], 11, 0) is OK
    assert book.best_bid() == (99.9, 2.0)
    assert book.best_ask() == (100.2, 5.0)


def test_delete_of_unknown_price_is_ignored() -> None:
    book = seeded()
    before = (book.levels(Side.BUY, 10), book.levels(Side.SELL, 10))
    assert book.apply_delta([["90", "0"]], [["110", "0"]], 11, 0) is OK
    assert (book.levels(Side.BUY, 10), book.levels(Side.SELL, 10)) == before


def test_delete_can_empty_a_side() -> None:
    book = seeded()
    assert book.apply_delta([["100", "0"], ["99.9", "0"], ["99.5", "0"]], [], 11, 0) is OK
    assert book.best_bid() is None
    assert book.spread_bps() is None
    assert book.top() is None
    assert book.valid


def test_delta_before_snapshot_invalidates_once() -> None:
    book = make_book()
    assert book.apply_delta([["1", "1"]], [], 5, 0) is INVALIDATED
    assert book.invalid_reason == "delta before snapshot"
    assert book.apply_delta([["1", "1"]], [], 6, 0) is INVALID
    assert book.invalid_reason == "delta before snapshot"
    assert book.levels(Side.BUY) == []
    assert book.apply_snapshot([["1", "1"]], [["2", "1"]], 7, 0) is OK
    assert book.valid


@pytest.mark.parametrize("u", [9, 10])
def test_delta_update_id_not_increasing_invalidates(u: int) -> None:
    book = seeded()
    assert book.apply_delta([["100.05", "1"]], [], u, 0) is INVALIDATED
    assert book.invalid_reason == f"update id went backwards: u={u} after 10"
    assert book.levels(Side.BUY, 1) == [(100.0, 1.0)]  # not applied
    assert book.update_id == 10


def test_invalid_book_drops_deltas_until_snapshot() -> None:
    book = seeded()
    book.apply_delta([], [], 5, 0)
    assert book.apply_delta([["100.05", "1"]], [], 11, 0) is INVALID
    assert book.best_bid() == (100.0, 1.0)
    assert book.invalid_reason == "update id went backwards: u=5 after 10"
    assert book.apply_snapshot([["100.05", "1"]], [["100.1", "1"]], 12, 0) is OK
    assert book.valid
    assert book.apply_delta([["100.05", "3"]], [], 13, 0) is OK
    assert book.best_bid() == (100.05, 3.0)


def test_crossed_delta_invalidates() -> None:
    book = seeded()
    assert book.apply_delta([["100.2", "1"]], [], 11, 0) is INVALIDATED
    assert book.invalid_reason == "crossed book: best bid 100.2 >= best ask 100.1"
    top = book.top()
    assert top is not None and top.valid is False
    assert book.apply_delta([], [["100.1", "0"], ["100.2", "0"]], 12, 0) is INVALID


def test_locked_book_is_crossed() -> None:
    book = make_book()
    assert book.apply_snapshot([["10", "1"]], [["10", "1"]], 3, 0) is INVALIDATED
    assert book.invalid_reason == "crossed book: best bid 10.0 >= best ask 10.0"


def test_crossed_snapshot_invalidates() -> None:
    book = seeded()
    assert book.apply_snapshot([["11", "1"]], [["10", "1"]], 11, 0) is INVALIDATED
    assert not book.valid
    assert book.apply_snapshot([["9", "1"]], [["10", "1"]], 12, 0) is OK
    assert book.valid


def test_invalidate_by_the_shell() -> None:
    book = seeded()
    book.invalidate("stream reconnected")
    assert not book.valid
    assert book.invalid_reason == "stream reconnected"
    assert book.apply_delta([["100.05", "1"]], [], 11, 0) is INVALID
    # any snapshot repairs it, even one whose u is lower (new connection)
    assert book.apply_snapshot([["100.05", "1"]], [["100.1", "1"]], 3, 0) is OK
    assert book.valid


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("level", "reason"),
    [
        (["abc", "1"], "malformed price 'abc'"),
        (["", "1"], "malformed price ''"),
        (["-1", "1"], "malformed price '-1'"),
        (["1e3", "1"], "malformed price '1e3'"),
        (["100.005", "1"], "price 100.005 is off the tick grid"),
        (["100.0001", "1"], "price 100.0001 is off the tick grid"),
        (["0", "1"], "price 0 is not positive"),
        # past a float's range the top cannot be computed: refused, not an OverflowError
        (["1" * 400, "1"], f"price {'1' * 24}... is out of range (400 digits)"),
        (["9" * 16, "1"], f"price {'9' * 16}... is out of range (16 digits)"),
        (["100", "x"], "malformed size 'x'"),
        (["100", "-1"], "malformed size '-1'"),
        (["100", "nan"], "malformed size 'nan'"),
        (["100", "inf"], "malformed size 'inf'"),
        (["100", None], "malformed size None"),
    ],
)
@pytest.mark.parametrize("kind", ["snapshot", "delta"])
def test_malformed_levels_invalidate(level: list[str], reason: str, kind: str) -> None:
    book = seeded("0.01")
    status = book.apply(kind, [level], [], 11, 0)
    assert status is INVALIDATED
    assert book.invalid_reason == reason


def test_price_between_ticks_is_off_grid() -> None:
    book = OrderBook("X", "0.5")
    assert book.apply_snapshot([["1.3", "1"]], [], 2, 0) is INVALIDATED
    assert book.invalid_reason == "price 1.3 is off the tick grid"


def test_bad_snapshot_drops_the_book() -> None:
    book = seeded()
    assert book.apply_snapshot([["1", "1"]], [["oops", "1"]], 11, 0) is INVALIDATED
    assert book.levels(Side.BUY) == [] and book.levels(Side.SELL) == []
    # a second broken snapshot while invalid is a new failure the caller must hear about
    assert book.apply_snapshot([["x", "1"]], [], 12, 0) is INVALIDATED
    assert book.invalid_reason == "malformed price 'x'"


def test_wrong_level_shape_invalidates() -> None:
    book = seeded()
    assert book.apply_delta([["100"]], [], 11, 0) is INVALIDATED
    assert book.invalid_reason is not None
    assert book.invalid_reason.startswith("malformed level: ")


def test_unknown_message_type_invalidates() -> None:
    book = seeded()
    assert book.apply("partial", [], [], 11, 0) is INVALIDATED
    assert book.invalid_reason == "unknown message type 'partial'"


def test_apply_dispatches() -> None:
    book = make_book()
    assert book.apply("snapshot", [["1", "1"]], [["2", "1"]], 5, 0) is OK
    assert book.apply("delta", [["1.5", "1"]], [], 6, 0) is OK
    assert book.best_bid() == (1.5, 1.0)


# ---------------------------------------------------------------- prices and reading


@pytest.mark.parametrize("tick", ["0", "-0.1", "nan", "inf"])
def test_bad_tick_size_is_refused(tick: str) -> None:
    with pytest.raises(ValueError, match="tick_size"):
        OrderBook("X", Decimal(tick))


@pytest.mark.parametrize(
    ("tick", "price", "expected"),
    [
        ("0.1", "0.3", 0.3),
        ("0.01", "65432.10", 65432.1),
        ("0.10", "65432.1000", 65432.1),
        ("0.5", "1234.5", 1234.5),
        ("5", "1235", 1235.0),
        ("1E+1", "120", 120.0),
        ("0.00001", "0.00007", 0.00007),
        ("0.0001", ".5", 0.5),
        ("1", "7.", 7.0),
    ],
)
def test_prices_are_exact(tick: str, price: str, expected: float) -> None:
    book = OrderBook("X", tick)  # a str tick is accepted too
    assert book.apply_snapshot([[price, "1"]], [], 2, 0) is OK
    assert book.levels(Side.BUY) == [(expected, 1.0)]


def test_equal_prices_with_different_spelling_are_one_level() -> None:
    book = make_book("0.01")
    book.apply_snapshot([["65432.10", "1"]], [], 2, 0)
    assert book.apply_delta([["65432.1", "2"], ["65432.100", "3"]], [], 3, 0) is OK
    assert book.levels(Side.BUY) == [(65432.1, 3.0)]
    assert book.apply_delta([["65432.1000", "0"]], [], 4, 0) is OK
    assert book.levels(Side.BUY) == []


def test_price_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book_module, "_CACHE_MAX", 4)
    book = make_book("1")
    book.apply_snapshot([], [], 2, 0)
    for u, price in enumerate(range(1, 20), start=3):
        assert book.apply_delta([[str(price), "1"]], [], u, 0) is OK
    assert len(book._cache) <= 4
    assert [p for p, _ in book.levels(Side.BUY, 3)] == [19.0, 18.0, 17.0]


def test_top_and_spread() -> None:
    book = seeded()
    top = book.top()
    assert top == BookTop(
        symbol="BTCUSDT", bid=100.0, bid_size=1.0, ask=100.1, ask_size=4.0, ts_ms=1_000
    )
    spread = book.spread_bps()
    assert spread is not None
    assert spread == pytest.approx(0.1 / 100.05 * 10_000)
    assert top.spread_bps == pytest.approx(spread)


def test_levels_refuses_an_unknown_side() -> None:
    with pytest.raises(ValueError, match="side"):
        seeded().levels("mid", 1)  # type: ignore[arg-type]


def test_repr_says_state() -> None:
    book = seeded()
    assert repr(book) == "OrderBook(BTCUSDT, u=10, 3 bids, 3 asks, valid)"
    book.invalidate("test")
    assert repr(book).endswith("invalid: test)")


# ---------------------------------------------------------------- property: naive reference

TICK = Decimal("0.5")


class RefBook:
    """Naive reference: Decimal prices, dicts, a full sort on every read."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, float] = {}
        self.asks: dict[Decimal, float] = {}
        self.valid = False
        self.had_snapshot = False
        self.u: int | None = None

    def snapshot(self, bids: list[list[str]], asks: list[list[str]], u: int) -> None:
        if self.valid and self.u is not None and u < self.u and u != 1:
            self.valid = False
            return
        # levels apply in order, as in a delta, onto an empty book
        self.bids = {}
        self.asks = {}
        self._merge(bids, asks)
        self.u = u
        self.valid = True
        self.had_snapshot = True
        self._check()

    def delta(self, bids: list[list[str]], asks: list[list[str]], u: int) -> None:
        if u == 1:
            self.snapshot(bids, asks, u)
            return
        if not self.valid:
            return
        assert self.u is not None
        if u <= self.u:
            self.valid = False
            return
        self._merge(bids, asks)
        self.u = u
        self._check()

    def _merge(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if float(s) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = float(s)

    def _check(self) -> None:
        if self.bids and self.asks and max(self.bids) >= min(self.asks):
            self.valid = False

    def levels(self, side: str) -> list[tuple[float, float]]:
        book = self.bids if side == "bid" else self.asks
        ordered = sorted(book, reverse=side == "bid")
        return [(float(p), book[p]) for p in ordered]


def _price_str(ticks: int, style: int) -> str:
    price = TICK * ticks
    text = f"{price:.1f}"
    if style == 1:
        return text + "00"  # trailing zeros: the same price
    if style == 2 and text.endswith(".0"):
        return text[:-2]  # no fraction at all
    return text


_levels = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=60),
        st.sampled_from(["0", "0", "1", "2.5", "0.001", "10"]),
        st.integers(min_value=0, max_value=2),
    ),
    max_size=8,
)
_message = st.tuples(
    st.sampled_from(["snapshot", "delta", "delta", "delta", "delta"]),
    _levels,
    _levels,
    st.integers(min_value=-3, max_value=5),  # u step: mostly forward, sometimes back
    st.booleans(),  # force u == 1
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, min_size=1, max_size=40))
def test_book_matches_naive_reference(messages: list[tuple]) -> None:  # type: ignore[type-arg]
    book = OrderBook("X", TICK)
    ref = RefBook()
    u = 10
    for kind, raw_bids, raw_asks, step, reset in messages:
        # bids live low, asks high, overlapping in the middle: crosses happen, but rarely
        bids = [[_price_str(t, style), s] for t, s, style in raw_bids]
        asks = [[_price_str(t + 52, style), s] for t, s, style in raw_asks]
        u = 1 if reset else max(2, u + step)
        was_valid = book.valid
        status = book.apply(kind, bids, asks, u, 0)
        if kind == "snapshot":
            ref.snapshot(bids, asks, u)
        else:
            ref.delta(bids, asks, u)
        assert book.valid == ref.valid
        if book.valid:
            assert status is OK
        elif was_valid:
            assert status is INVALIDATED
        if ref.had_snapshot:
            assert book.levels("bid") == ref.levels("bid")
            assert book.levels("ask") == ref.levels("ask")
            if ref.bids:
                assert book.best_bid() == ref.levels("bid")[0]
            if ref.asks:
                assert book.best_ask() == ref.levels("ask")[0]


# ---------------------------------------------------------------- sizes as float() reads them


class UncachedBook(OrderBook):
    """A reference book whose deltas parse every size with a plain ``float`` call."""

    __slots__ = ()

    def _merge(
        self, side: dict[int, float], keys: list[int], levels: Iterable[Level], sign: int
    ) -> None:
        for price, size_str in levels:
            ticks = self._cache.get(price)
            if ticks is None:
                ticks = self._parse_price(price)
            try:
                size = float(size_str)
            except (TypeError, ValueError):
                raise BadLevel(f"malformed size {size_str!r}") from None
            if 0.0 < size < float("inf"):
                if ticks not in side:
                    insort(keys, sign * ticks)
                side[ticks] = size
            elif size == 0.0:
                if side.pop(ticks, None) is not None:
                    del keys[bisect_left(keys, sign * ticks)]
            else:
                raise BadLevel(f"malformed size {size_str!r}")


_SIZES = ["0", "0.0", "-0", "1", "2.5", "2.50", "10", "x", "-1", "nan", "inf", "1_0", " 5", ""]
_delta_levels = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=30),
        st.one_of(
            st.sampled_from(_SIZES),
            st.sampled_from([None, 3.0, 7, ["1"], ("2",)]),
            # floats, as the typed decoder hands them over: the book checks their range
            st.sampled_from([0.0, -0.0, 2.5, -1.0, float("nan"), float("inf"), -float("inf")]),
        ),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_delta_levels, _delta_levels, st.booleans()), min_size=1, max_size=30))
def test_sizes_apply_exactly_as_float_parses_them(messages: list[tuple]) -> None:  # type: ignore[type-arg]
    """Repeated, malformed and oddly typed sizes (unhashable ones too): the same status,
    reason, levels and top as the reference merge that calls ``float`` per size."""
    cached, uncached = OrderBook("X", TICK), UncachedBook("X", TICK)
    for book in (cached, uncached):
        book.apply_snapshot([["5", "1"]], [["40", "1"]], 1, 0)
    for u, (raw_bids, raw_asks, snapshot) in enumerate(messages, start=2):
        bids = [[_price_str(t, 0), s] for t, s in raw_bids]
        asks = [[_price_str(t + 52, 0), s] for t, s in raw_asks]
        kind = "snapshot" if snapshot else "delta"
        results = [
            (b.apply(kind, bids, asks, u, u), b.invalid_reason, b.levels("bid"), b.levels("ask"))
            for b in (cached, uncached)
        ]
        assert results[0] == results[1]
        assert cached.top() == uncached.top()
