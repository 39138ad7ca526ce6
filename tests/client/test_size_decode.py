"""Book sizes read in C by the typed decoder: the value ``float`` reads, or a refusal.

``bybit.decode`` reads each level's size with msgspec's lax (``strict=False``) decoder
instead of calling ``float`` on the string in the book. That is only correct if every
size it accepts has exactly the value ``float(size)`` has and is one the book takes
(finite, >= 0), and if a frame whose sizes it refuses ends as it ended before: through
the generic parser, its strings read by the book. Checked on edge cases, on random
decimal strings and JSON numbers (hypothesis), and on random streams of book frames
applied by ``MarketData`` both ways: the same events, book, reasons and counts.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, localcontext
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.bench import make_frames
from scalper.bybit import marketdata as marketdata_module
from scalper.bybit.decode import BookFrame, decode_public
from scalper.bybit.marketdata import MarketData
from scalper.bybit.parse import ParseStats, parse_message

#: RFC 8259's number grammar: the strings msgspec's lax float parse is meant to take
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")

EDGE_SIZES = [
    "0",
    "0.0",
    "-0",
    "-0.0",
    "0.000",
    "1",
    "1e3",
    "1E3",
    "1e+3",
    "1e-3",
    "12.5",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "+inf",
    "",
    " 1",
    "1 ",
    "1_0",
    "01",
    "+1",
    ".5",
    "1.",
    "-1",
    "-0.001",
    "1e400",
    "1e-400",
    "-1e-400",
    "1e99999999999",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "5e-324",
    "2.4703282292062328e-324",
    "12345678901234567890",
    "123456789012345678901",
    "0.12345678901234567890",
    "98765432109876543210.12345678901234567890",
    "0x10",
    "1e",
    "x",
]


def _typed_levels(levels: str) -> list[tuple[str, float]] | None:
    """The bids ``levels`` (their JSON) as the typed decoder reads them in a book frame,
    or None when it refuses them (the frame then takes the generic parser)."""
    raw = (
        '{"topic":"orderbook.50.X","type":"snapshot","ts":1,'
        f'"data":{{"s":"X","b":{levels},"a":[],"u":1}}}}'
    )
    msg = decode_public(raw, ParseStats())
    return msg.bids if type(msg) is BookFrame else None


def _lax(size: Any) -> float | None:
    """The size as the typed decoder reads it from a level, or None when it refuses."""
    levels = _typed_levels(json.dumps([["1", size]]))
    return None if levels is None else float(levels[0][1])


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _check_string(text: str) -> None:
    value, expected = _lax(text), _float(text)
    if value is not None:
        # accepted: float() reads the same number, and it is one the book takes
        assert expected is not None
        assert value == expected
        assert repr(value) == repr(expected) or value == 0.0  # "-0" reads +0.0
        assert 0.0 <= value < math.inf
    elif _JSON_NUMBER.fullmatch(text) and expected is not None:
        # refused although it is a JSON number: only one the book refuses too
        assert not 0.0 <= expected < math.inf


@pytest.mark.parametrize("text", EDGE_SIZES)
def test_an_edge_case_size_reads_as_float_reads_it_or_is_refused(text: str) -> None:
    _check_string(text)


def test_the_edge_cases_the_book_refuses_are_refused_and_plain_sizes_taken() -> None:
    refused = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "", " 1", "1_0", "01", "-1"]
    assert all(_lax(text) is None for text in refused)
    assert _lax("12.5") == 12.5 and _lax("1e3") == 1000.0 and _lax("0") == 0.0
    assert _lax("12345678901234567890") == 12345678901234567890.0


_DIGITS = st.text("0123456789", min_size=1, max_size=24)
_decimal_strings = st.builds(
    lambda sign, whole, frac, exp: sign + whole + frac + exp,
    st.sampled_from(["", "", "", "-", "+"]),
    _DIGITS,
    st.one_of(st.just(""), _DIGITS.map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, n: f"{e}{s}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(min_value=0, max_value=400),
        ),
    ),
)
_size_strings = st.one_of(
    _decimal_strings,
    st.floats(min_value=0.0).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text("0123456789.eE+-_ naifINF", max_size=12),
)


@settings(max_examples=2000, deadline=None)
@given(_size_strings)
def test_a_random_decimal_string_reads_as_float_reads_it_or_is_refused(text: str) -> None:
    _check_string(text)


@settings(max_examples=1000, deadline=None)
@given(st.floats(min_value=5e-324, max_value=1.7e308), st.sampled_from([-1, 0, 1]))
def test_a_size_halfway_between_two_floats_rounds_as_float_rounds_it(x: float, nudge: int) -> None:
    """The hardest decimal strings for a float parser: the exact midpoint between two
    neighbouring floats (up to hundreds of digits), and the decimals just beside it."""
    with localcontext() as exact:
        exact.prec = 1200  # enough for any midpoint: no rounding in the arithmetic
        mid = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
        if nudge:
            mid = mid.next_plus() if nudge > 0 else mid.next_minus()
        text = f"{mid:e}"
    assert _lax(text) == float(text)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats()))
def test_a_size_sent_as_a_json_number_reads_as_the_generic_parser_reads_it(number: Any) -> None:
    """A number (not a string) is taken by the typed path only with the value the generic
    parser's ``orjson`` gives it (which the book then reads with ``float``)."""
    raw = f'[["1", {json.dumps(number)}]]'
    levels = _typed_levels(raw)
    value = None if levels is None else float(levels[0][1])
    if value is not None:
        assert value == float(orjson.loads(raw)[0][1])
        assert 0.0 <= value < math.inf


# ---------------------------------------------------------------- the same book both ways

_SIZE = st.one_of(
    st.floats(min_value=0.001, max_value=50_000).map(lambda v: f"{v:.3f}"),
    st.sampled_from(EDGE_SIZES),
    _size_strings,
    st.floats(min_value=0.0, max_value=1e6),  # sent as a JSON number
    st.integers(min_value=0, max_value=10**22),
)
_LEVEL = st.tuples(st.integers(min_value=1, max_value=30), _SIZE)
_FRAME = st.tuples(
    st.sampled_from(["snapshot", "delta", "delta", "delta", "delta"]),
    st.lists(_LEVEL, max_size=4),
    st.lists(_LEVEL, max_size=4),
    st.integers(min_value=-1, max_value=3),  # u step: mostly forward
    st.booleans(),  # u == 1
)


def _book_frame(kind: str, bids: list[Any], asks: list[Any], u: int) -> str:
    data = {
        "s": "X",
        "b": [[str(t), s] for t, s in bids],
        "a": [[str(t + 20), s] for t, s in asks],  # overlaps the bids: crosses happen
        "u": u,
        "seq": u,
    }
    return json.dumps({"topic": "orderbook.50.X", "type": kind, "ts": u, "data": data})


def _through_the_generic_parser(
    raw: str | bytes, stats: ParseStats, floats: dict[str, float] | None = None
) -> Any:
    return parse_message(raw, stats)


def _state(market: MarketData) -> Any:
    book = market.book
    assert book is not None
    return (
        book.levels("bid"),
        book.levels("ask"),
        book.invalid_reason,
        book.update_id,
        book.ts_ms,
        market.stats.counts,
        market.invalidations,
        market.book_messages,
        market.last_seq,
        market.take_resubscribe(),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAME, min_size=1, max_size=25))
def test_a_random_book_stream_gives_the_same_book_as_the_string_path(frames: list[Any]) -> None:
    """Sizes read in C vs every size string read by the book (the path of the generic
    parser, which is what the typed path did with its strings): the same event per frame,
    the same levels, invalid reason, counts and resubscribes."""
    typed, strings = MarketData(ParseStats()), MarketData(ParseStats())
    typed.follow("X", "1")
    strings.follow("X", "1")
    u = 5
    for kind, bids, asks, step, reset in frames:
        u = 1 if reset else max(2, u + step)
        raw = _book_frame(kind, bids, asks, u)
        event = typed.frame(raw)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(marketdata_module, "decode_public", _through_the_generic_parser)
            expected = strings.frame(raw)
        assert event == expected
        assert _state(typed) == _state(strings)


def test_the_bench_streams_sizes_are_read_by_the_typed_path() -> None:
    """The stream's book frames really take the C read (not the fallback): floats."""
    stats = ParseStats()
    book_frames = [raw for raw in make_frames(300) if b"orderbook" in raw]
    for raw in book_frames:
        msg = decode_public(raw, stats)
        assert type(msg) is BookFrame
        data = orjson.loads(raw)["data"]
        sizes = [size for _, size in (*msg.bids, *msg.asks)]
        assert sizes and all(type(size) is float for size in sizes)
        assert sizes == [float(size) for _, size in (*data["b"], *data["a"])]
    assert stats.errors == 0
