"""The typed hot-path decoder agrees with the generic parser, frame for frame.

``bybit.decode.decode_public`` must return what ``parse.parse_message`` returns for every
input (the same message content, or None) and count every failure the same way, by
kind: the fast path may only be faster, never more lenient or stricter. Checked on the
documented samples, on the bench's stream, on a list of broken frames, and on random
mutations of valid frames (hypothesis).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.bench import make_frames
from scalper.bybit import decode as decode_module
from scalper.bybit.decode import BookFrame, decode_public
from scalper.bybit.parse import BookMessage, ParseStats, TradesMessage, parse_message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"


def _sample(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def _norm(msg: Any) -> Any:
    """Comparable content: a book frame of either type as one tuple, levels as tuples."""
    if isinstance(msg, BookFrame | BookMessage):
        return (
            "book",
            msg.symbol,
            msg.kind,
            [_level(level) for level in msg.bids],
            [_level(level) for level in msg.asks],
            msg.update_id,
            msg.seq,
            msg.ts_ms,
        )
    return msg


def _level(level: Any) -> Any:
    """A level as a tuple, its size as the number the book reads from it: the typed path
    reads a size to a float in C, the generic parser leaves the string to the book."""
    if not isinstance(level, list | tuple):
        return level
    out = tuple(level)
    if len(out) == 2 and isinstance(out[1], str):
        try:
            size = float(out[1])
        except ValueError:
            return out
        if math.isfinite(size):
            return (out[0], size)
    return out


def _both(raw: str | bytes) -> tuple[Any, Any, ParseStats, ParseStats]:
    fast_stats, slow_stats = ParseStats(name="fast"), ParseStats(name="slow")
    fast = decode_public(raw, fast_stats)
    slow = parse_message(raw, slow_stats)
    return _norm(fast), _norm(slow), fast_stats, slow_stats


def _assert_same(raw: str | bytes) -> Any:
    fast, slow, fast_stats, slow_stats = _both(raw)
    assert fast == slow
    assert fast_stats.counts == slow_stats.counts
    return fast


def test_documented_samples_decode_to_the_same_messages() -> None:
    for name in (
        "ws_public_orderbook_snapshot",
        "ws_public_orderbook_delta",
        "ws_public_publicTrade",
    ):
        msg = _assert_same(json.dumps(_sample(name)))
        assert msg is not None


def test_the_bench_stream_decodes_to_the_same_messages_through_the_fast_path() -> None:
    frames = make_frames(500)
    stats = ParseStats()
    for raw in frames:
        assert _assert_same(raw) is not None
        # and the book frames really took the typed path (not the fallback)
        if b"orderbook" in raw:
            assert type(decode_public(raw, stats)) is BookFrame
    assert stats.errors == 0


BOOK: dict[str, Any] = {
    "topic": "orderbook.50.BTCUSDT",
    "type": "delta",
    "ts": 1700000000001,
    "data": {"s": "BTCUSDT", "b": [["100.5", "1.2"]], "a": [["100.6", "0"]], "u": 7, "seq": 70},
    "cts": 1700000000000,
}
TRADES: dict[str, Any] = {
    "topic": "publicTrade.BTCUSDT",
    "type": "snapshot",
    "ts": 1700000000001,
    "data": [
        {"T": 1700000000000, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "100.5", "i": "a"},
        {"T": 1700000000001, "s": "BTCUSDT", "S": "Sell", "v": "1", "p": "100.4", "i": "b"},
    ],
}


def _with(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> str:
    obj = json.loads(json.dumps(base))
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(obj)


_DELETE = object()

BROKEN = [
    "not json",
    "[1, 2]",
    '{"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {"s": "BTCUSDT", "b": [["1',
    _with(BOOK, ("type",), "partial"),
    _with(BOOK, ("type",), _DELETE),
    _with(BOOK, ("ts",), "1700000000001"),
    _with(BOOK, ("ts",), _DELETE),
    _with(BOOK, ("data", "u"), "7"),
    _with(BOOK, ("data", "u"), True),
    _with(BOOK, ("data", "s"), 5),
    _with(BOOK, ("data", "b"), {"100.5": "1"}),
    _with(BOOK, ("data", "b"), [[100.5, 1.2]]),  # numbers: the book rejects them later
    _with(BOOK, ("data", "b"), [["100.5", "1", "x"]]),
    _with(BOOK, ("data", "seq"), "70"),
    _with(BOOK, ("data",), [1, 2]),
    _with(BOOK, ("topic",), "orderbook.50.BTCUSDT.extra"),
    _with(BOOK, ("topic",), "mystery.BTCUSDT"),
    _with(TRADES, ("data", 0, "S"), "Hold"),
    _with(TRADES, ("data", 0, "p"), "-1"),
    _with(TRADES, ("data", 0, "p"), "nan"),
    # beyond a float: refused on both paths, not a trade at price inf
    _with(TRADES, ("data", 0, "p"), "inf"),
    _with(TRADES, ("data", 0, "p"), "1e999"),
    _with(TRADES, ("data", 1, "v"), "Infinity"),
    _with(TRADES, ("data", 0, "p"), "abc"),
    _with(TRADES, ("data", 1, "v"), "0"),
    _with(TRADES, ("data", 0, "T"), "1700000000000"),  # a decimal-string time is fine
    _with(TRADES, ("data", 0, "T"), 1.5),
    _with(TRADES, ("data", 1), "row"),
    _with(TRADES, ("data",), []),
    _with(TRADES, ("data",), {"s": "BTCUSDT"}),
    '{"op": "ping", "success": true, "ret_msg": "pong", "conn_id": "c"}',
    '{"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": 1, "data": {"symbol": "BTCUSDT"}}',
]


def test_broken_frames_give_the_same_result_and_the_same_counts() -> None:
    for raw in BROKEN:
        _assert_same(raw)


def test_a_malformed_frame_is_counted_once_and_skipped() -> None:
    stats = ParseStats()
    assert decode_public(_with(TRADES, ("data", 0, "S"), "Hold"), stats) is None
    assert decode_public(_with(BOOK, ("data", "u"), "x"), stats) is None
    assert stats.counts == {"bad_value": 1, "wrong_type": 1}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
_PATHS = [
    ("type",),
    ("ts",),
    ("topic",),
    ("data",),
    ("data", "s"),
    ("data", "b"),
    ("data", "a"),
    ("data", "u"),
    ("data", "seq"),
]
_TRADE_PATHS = [("data", 0, key) for key in ("T", "s", "S", "v", "p")] + [("data", 0), ("data",)]


@pytest.mark.parametrize("path", [("ts",), ("data", "u"), ("data", "seq")])
@pytest.mark.parametrize("value", [-(2**63) - 1, 2**64])
def test_an_integer_beyond_64_bits_is_read_alike_on_both_paths(path: Any, value: int) -> None:
    # found by the mutation test below: msgspec read a ts beyond 64 bits that the
    # generic parser refuses; now the typed decoder refuses it too and defers
    msg = _assert_same(_with(BOOK, path, value))
    if path != ("data", "seq"):  # the generic parser ignores seq's size
        assert msg is None


_INTEGER_PATHS = [
    (BOOK, ("ts",)),
    (BOOK, ("data", "u")),
    (BOOK, ("data", "seq")),
    (TRADES, ("ts",)),
    (TRADES, ("data", 0, "T")),
    (TRADES, ("data", 1, "T")),
]


@pytest.mark.parametrize("case", _INTEGER_PATHS)
@pytest.mark.parametrize("value", ["5", "1700000000000", "-3", " 7", "1e3", 5.0, 1e3, -0.0, 2.5])
def test_an_integer_sent_as_a_string_or_a_float_is_read_alike_on_both_paths(
    case: Any, value: Any
) -> None:
    """The typed decoder runs in lax mode (for the sizes), which would read ``"5"`` or
    ``5.0`` into an ``int`` field: its integer fields take neither, so such a frame
    goes to the generic parser and reads exactly as there (which refuses it for a
    book's ts and u; it ignores seq's type and a trade frame's ts, and reads a trade's
    T from a decimal string)."""
    base, path = case
    fast = _assert_same(_with(base, path, value))
    if (base is BOOK and path != ("data", "seq")) or (
        path[-1] == "T" and not isinstance(value, str)
    ):
        assert fast is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([(BOOK, p) for p in _PATHS] + [(TRADES, p) for p in _TRADE_PATHS]),
    st.one_of(st.just(_DELETE), _JSON),
)
def test_random_mutations_of_valid_frames_agree(case: Any, value: Any) -> None:
    base, path = case
    _assert_same(_with(base, path, value))


def test_a_streams_float_memo_changes_no_result() -> None:
    """One memo across a stream's frames (as ``MarketData`` keeps it): every frame decodes
    to what it decodes to without one, broken prices and sizes included, and the memo
    holds exactly ``float`` of each string it kept."""
    memo: dict[str, float] = {}
    frames = [*make_frames(300), *BROKEN, *(raw for raw in make_frames(300) if b"Trade" in raw)]
    for raw in frames:
        alone, shared = ParseStats(), ParseStats()
        assert _norm(decode_public(raw, shared, memo)) == _norm(decode_public(raw, alone))
        assert shared.counts == alone.counts
    assert len(memo) > 10
    assert all(repr(value) == repr(float(text)) for text, value in memo.items())


def test_the_float_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "_FLOATS_MAX", 3)
    memo: dict[str, float] = {}
    for i in range(1, 10):
        msg = decode_public(_with(TRADES, ("data", 0, "p"), f"{i}.5"), ParseStats(), memo)
        assert isinstance(msg, TradesMessage) and msg.trades[0].price == i + 0.5
    assert 0 < len(memo) <= 3


@pytest.mark.parametrize(("key", "value"), [("p", "inf"), ("p", "1e999"), ("v", "Infinity")])
def test_a_trade_beyond_a_floats_range_is_counted_and_skipped(key: str, value: str) -> None:
    # a trade at price inf would make an infinite momentum: an entry signal from garbage
    stats = ParseStats()
    assert decode_public(_with(TRADES, ("data", 0, key), value), stats) is None
    assert stats.counts == {"bad_value": 1}
