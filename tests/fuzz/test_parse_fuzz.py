"""Fuzzing the wire parser (issue 10.4): arbitrary JSON and near-valid Bybit frames.

The near-valid frames are Bybit's documented samples (``tests/fixtures/bybit``,
the reference's) with one to three mutations: a key deleted, a value
replaced by any JSON value, a number string bent (``"NaN"``, ``"1e999"``, ``"-0"``,
``""``...). Whatever comes in:

* ``parse_message`` never raises: it returns a message or None, and a None is counted
  in ``ParseStats`` (malformed exchange data -> counted, skipped);
* the row parsers of the REST path raise ``ParseError`` (a typed ``ProtocolError``) or
  nothing;
* the book a stream of those frames is applied to is never crossed and never holds a
  negative or zero size while it says it is valid.

``make test`` runs a modest number of examples; ``make soak`` (slow) a deeper one.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.bybit import parse
from scalper.bybit.parse import BookMessage, ParseError, ParseStats, parse_message
from scalper.core.book import BookStatus, OrderBook

DATA = Path(__file__).parent.parent / "fixtures" / "bybit"  # the reference's samples
WS = [
    "ws_public_orderbook_snapshot",
    "ws_public_orderbook_delta",
    "ws_public_publicTrade",
    "ws_public_tickers_linear_snapshot",
    "ws_private_order",
    "ws_private_execution",
    "ws_private_execution_fast",
    "ws_private_position",
    "ws_private_wallet",
    "ws_public_subscribe",
    "ws_private_auth",
]
SAMPLES: dict[str, Any] = {
    name: json.loads((DATA / f"{name}.json").read_text())["response"] for name in WS
}
REST_ROWS = {
    "rest_order_realtime": parse.order_from_wire,
    "rest_position_list": parse.position_from_wire,
    "rest_execution_list": parse.fill_from_wire,
}
ROWS: dict[str, list[dict[str, Any]]] = {
    name: json.loads((DATA / f"{name}.json").read_text())["response"]["result"]["list"]
    for name in REST_ROWS
}
BENT = ["", "NaN", "nan", "inf", "-inf", "1e999", "-1e999", "-0", "0", "-1", "1e-30",
        "0x10", "1_000", " 1", "１", "9" * 60, "null", "true", "Buy", "Sell", "snapshot",
        "delta"]  # fmt: skip
SIZE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(BENT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),  # noqa: E501
    max_leaves=8,
)  # fmt: skip


def _dumps(obj: Any) -> bytes:
    """JSON text (stdlib: integers beyond 64 bits are valid JSON too)."""
    return json.dumps(obj).encode()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``obj`` (dict keys and list indices)."""
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.extend(_paths(value, (*prefix, i)))
    return out


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    """``sample`` with one to three mutations at random paths."""
    obj = copy.deepcopy(sample)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["delete", "replace", "bend", "duplicate"]))
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values)
        elif action == "bend":
            parent[last] = draw(st.sampled_from(BENT))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[last] = [parent[last], parent[last]]
    return obj


def _parse(raw: bytes | str) -> Any:
    stats = ParseStats()
    message = parse_message(raw, stats)
    if message is None:
        assert stats.errors > 0 or stats.ignored > 0  # a frame skipped is a frame counted
    return message


def _check_book(book: OrderBook) -> None:
    if not book.valid:
        return
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        assert bid[0] < ask[0], f"valid book crossed: {bid} >= {ask}"
    for side in ("bid", "ask"):
        for price, size in book.levels(side):
            assert size > 0 and price > 0, f"valid book holds {side} {size} @ {price}"


def _frames() -> st.SearchStrategy[Any]:
    return st.one_of(*(mutated(SAMPLES[name]) for name in WS))


@SIZE
@given(st.binary(max_size=200) | st.text(max_size=200) | json_values.map(_dumps))
def test_arbitrary_bytes_and_json_never_raise(raw: Any) -> None:
    _parse(raw)


@SIZE
@given(_frames())
def test_near_valid_frames_never_raise(frame: Any) -> None:
    _parse(_dumps(frame))


@SIZE
@given(st.sampled_from(sorted(REST_ROWS)), st.data())
def test_rest_rows_raise_only_parse_error(name: str, data: st.DataObject) -> None:
    row = data.draw(mutated(ROWS[name][0]))
    if not isinstance(row, dict):
        return
    with contextlib.suppress(ParseError):
        REST_ROWS[name](row)


def _book_run(frames: list[Any]) -> int:
    """Apply ``frames`` (as the stream does), checking the book after each; the number
    of deltas applied to a valid book."""
    book = OrderBook("BTCUSDT", "0.50")
    stats = ParseStats()
    applied = 0
    for frame in frames:
        message = parse_message(_dumps(frame), stats)
        if isinstance(message, BookMessage):
            status = book.apply(
                message.kind, message.bids, message.asks, message.update_id, message.ts_ms
            )
            applied += message.kind == "delta" and status is BookStatus.OK
        _check_book(book)
    return applied


_SIZES = ["0", "0.001", "1", "12.5", "0.0000"]
_BAD_SIZES = ["-1", "-0", "", "NaN", "1e999", "x", "-0.001"]


@st.composite
def _delta(draw: st.DrawFn, u: int) -> Any:
    """A delta continuing the sample snapshot (``u`` in sequence, or not), with levels
    anywhere around the touch (so some would cross) and sizes good and bad."""

    def level(side: str) -> list[str]:
        # mostly on its own side of the sample's touch (16493.5 / 16611), now and then
        # through it: such a delta must invalidate the book, never cross it
        ticks = draw(st.integers(-10, 400))
        price = 16610.5 - ticks * 0.5 if side == "b" else 16494 + ticks * 0.5
        text = f"{price:.2f}" if draw(st.integers(0, 29)) else draw(st.sampled_from(BENT))
        sizes = _SIZES if draw(st.integers(0, 29)) else _BAD_SIZES
        return [text, draw(st.sampled_from(sizes))]

    frame = copy.deepcopy(SAMPLES["ws_public_orderbook_delta"])
    frame["data"]["u"] = u if draw(st.integers(0, 19)) else draw(st.integers(-2, 2**40))
    frame["data"]["b"] = [level("b") for _ in range(draw(st.integers(0, 3)))]
    frame["data"]["a"] = [level("a") for _ in range(draw(st.integers(0, 3)))]
    return draw(mutated(frame)) if not draw(st.integers(0, 9)) else frame


@st.composite
def _book_frames(draw: st.DrawFn) -> list[Any]:
    """The sample snapshot, then deltas in sequence (some mutated, some out of order),
    now and then a fresh snapshot."""
    snapshot = SAMPLES["ws_public_orderbook_snapshot"]
    frames = [snapshot]
    u = snapshot["data"]["u"]
    for _ in range(draw(st.integers(1, 12))):
        if not draw(st.integers(0, 7)):
            frames.append(draw(mutated(snapshot)) if draw(st.booleans()) else snapshot)
            u = snapshot["data"]["u"]
            continue
        u += 1
        frames.append(draw(_delta(u)))
    return frames


@SIZE
@given(_book_frames())
def test_book_fed_near_valid_frames_is_never_crossed_or_negative(frames: list[Any]) -> None:
    _book_run(frames)


def test_the_book_generator_reaches_valid_deltas() -> None:
    """The property above is not vacuous: many generated deltas apply to a valid book."""
    applied = 0

    @settings(max_examples=50, deadline=None, database=None, derandomize=True)
    @given(_book_frames())
    def run(frames: list[Any]) -> None:
        nonlocal applied
        applied += _book_run(frames)

    run()
    assert applied > 20


@pytest.mark.slow
@DEEP
@given(_frames())
def test_near_valid_frames_never_raise_deep(frame: Any) -> None:
    _parse(_dumps(frame))


@pytest.mark.slow
@DEEP
@given(_book_frames())
def test_book_never_crossed_or_negative_deep(frames: list[Any]) -> None:
    _book_run(frames)
