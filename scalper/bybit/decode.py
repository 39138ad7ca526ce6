"""Typed decoding of the public hot-path frames: ``orderbook.*`` and ``publicTrade.*``.

Why a second decoder beside ``parse.parse_message``: book and trade frames are nearly
every frame the bot receives, and decoding them with ``msgspec`` straight into typed
structs (no intermediate dicts, field types checked in C) measured 1.6x faster than
``orjson.loads`` for a book delta and 2x for a trade frame, before counting the Python
shape checks that the generic parser then runs on the dicts.

The rule that keeps both paths equivalent: this decoder is *at most as lenient* as
``parse_message``. Whatever it cannot decode (a control reply, a ticker, a private push,
a malformed or wrongly typed frame) goes to ``parse_message`` unchanged, which returns
the message or counts the failure in ``ParseStats`` by kind, exactly as before. So a
malformed frame is still counted once and skipped, and the error kinds do not change.

A book level's price stays a wire string: ``scalper.core.book.OrderBook`` turns it
straight into integer ticks (exact, no Decimal, no float round-trip) and validates it.
Its size is read to a float here, in C, by lax mode (``strict=False``, a setting of the
whole decoder in msgspec). Lax mode reads a JSON string into a float by msgspec's JSON
number grammar, correctly rounded, so a size it accepts has the value ``float(size)``
has; it refuses what that grammar refuses (``" 1"``, ``"01"``, ``"1_0"``, ``".5"``,
``"+1"``, ``""``), and the bounds on ``_Size`` refuse ``nan``, ``inf`` and negatives,
which lax mode would read. Whatever it refuses, the frame goes to ``parse_message`` with
its strings, and the book reads them as it always did: a bad size invalidates the book
with the same reason, a size like ``"01"`` is applied as ``1.0``. The one difference is
the sign of a zero (``"-0"`` reads 0.0), and a zero size deletes its level either way.
Lax mode changes nothing else here: a string, literal or enum field takes exactly what
strict mode takes, and every integer field is typed ``_AnyInt``, for which lax mode
coerces nothing (it would read ``"5"`` or ``5.0`` into an ``int`` field): a JSON
integer is an ``int``, a string or a float keeps its type, and ``decode_public`` sends a
frame with such an integer to ``parse_message``, as a strict ``int`` field would. (One
decoder for the whole frame measured 0.2 us a book frame under a strict frame decoder
plus a lax one for each level list.)
A trade's price string goes through the caller's memo of ``float`` (a stream keeps one):
trades repeat their prices, and ``float(str)`` is the costliest step left. Its size does
not: sizes rarely repeat, and a memo that misses costs more than the parse.
"""

from __future__ import annotations

import sys
from typing import Annotated, Final, Literal

import msgspec

from scalper.core.hotpath import trade_ticks
from scalper.core.model import Side, Trade
from scalper.core.values import trade

from .parse import Message, ParseStats, parse_message

__all__ = ["BookFrame", "PublicDecoder", "PublicMessage", "decode_public"]


#: a 64-bit integer: msgspec reads any size, orjson refuses what does not fit 64 bits,
#: and this decoder must be at most as lenient as ``parse_message`` (whatever it
#: refuses goes to that parser, which decides)
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


#: a level's size as the book takes it: finite and >= 0 (NaN fails both bounds)
_Size = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]


class BookFrame(msgspec.Struct, frozen=True, gc=False):
    """One ``orderbook.{depth}.{symbol}`` frame: prices as wire strings, sizes as floats.

    The same attribute names as ``parse.BookMessage``, so the stream applies either one
    with ``OrderBook.apply(kind, bids, asks, update_id, ts_ms)``.
    """

    symbol: str
    kind: str  #: "snapshot" or "delta"
    bids: list[tuple[str, float]]
    asks: list[tuple[str, float]]
    update_id: int
    seq: int
    ts_ms: int


#: an integer field in the lax decoder, without lax mode's coercions: a JSON integer
#: reads as an ``int`` (64-bit), a float or a string as itself, which the caller refuses
_AnyInt = _Int | float | str


class _BookData(msgspec.Struct, gc=False):
    s: str
    b: list[tuple[str, _Size]]
    a: list[tuple[str, _Size]]
    u: _AnyInt
    seq: _AnyInt = 0


class _TradeRow(msgspec.Struct, gc=False):
    T: _AnyInt
    s: str
    S: Side  # "Buy" or "Sell", read to the member in C (any other value fails here)
    v: str
    p: str


class _Frame(msgspec.Struct, gc=False):
    topic: str
    # An object is a book's data, an array a trade frame's rows; anything else fails
    # here and goes to the generic parser (which knows tickers and private pushes).
    data: _BookData | list[_TradeRow]
    ts: _AnyInt  # required, as parse_message requires it of a book (a trade frame without
    #          it is rare enough to take the fallback)
    # The literal strings, not a new string per frame; any other type takes the fallback
    # (a book then fails there as it would here, a trade frame decodes the same).
    type: Literal["snapshot", "delta", ""] = ""


PublicMessage = BookFrame | Message

#: lax: a size string is read to a float (and nothing else is coerced: ``_AnyInt``)
_DECODE: Final = msgspec.json.Decoder(_Frame, strict=False).decode
_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError)
#: past a float's range: ``float("1e999")`` is inf, not a price
_INF = float("inf")
#: bound on a stream's memo of trade price strings (cleared when full)
_FLOATS_MAX: Final = 1 << 14


def decode_public(
    raw: str | bytes, stats: ParseStats, floats: dict[str, float] | None = None
) -> PublicMessage | None:
    """One public frame -> ``BookFrame`` / ``TradesMessage`` / another message, or None.

    Never raises for bad input; failures are counted in ``stats`` by ``parse_message``.
    ``floats`` is the caller's memo of trade price strings (``float(str)`` is a
    correctly rounded decimal parse, 0.15 us, and trades repeat their prices): a
    stream keeps one across its frames; without it every price is parsed.
    """
    try:
        frame = _DECODE(raw)
    except _ERRORS:
        return parse_message(raw, stats)
    ts = frame.ts
    if type(ts) is not int:  # (``_AnyInt``: what a strict decoder refuses)
        return parse_message(raw, stats)
    data = frame.data
    topic = frame.topic
    if type(data) is _BookData:
        kind = frame.type
        u = data.u
        seq = data.seq
        if (
            (kind == "delta" or kind == "snapshot")
            and topic.startswith("orderbook.")
            and type(u) is int
            and type(seq) is int
        ):
            return BookFrame(data.s, kind, data.b, data.a, u, seq, ts)
        return parse_message(raw, stats)
    if topic.startswith("publicTrade."):
        # the union's array member
        trades = _trades(data, {} if floats is None else floats)  # type: ignore[arg-type]
        if trades is not None:
            symbol = trades[0].symbol if trades else topic[12:]
            return trade_ticks(symbol, trades)  # a TradesMessage
    return parse_message(raw, stats)


def _trades(rows: list[_TradeRow], floats: dict[str, float]) -> tuple[Trade, ...] | None:
    """Trades of one frame, or None when a row is not usable (the generic parser then
    counts the failure by its kind). ``floats``: the memo of prices' ``float(str)``."""
    out: list[Trade] = []
    for row in rows:  # (a frame has a few rows: no bound methods kept in locals)
        ts_ms = row.T
        if type(ts_ms) is not int:  # (``_AnyInt``)
            return None
        price = floats.get(row.p)
        if price is None:
            price = _parse_float(row.p, floats)
        try:
            qty = float(row.v)
        except ValueError:
            qty = None
        if not (price is not None and qty is not None and 0 < price < _INF and 0 < qty < _INF):
            return None
        out.append(trade(row.s, price, qty, row.S, ts_ms))
    return tuple(out)


def _parse_float(text: str, floats: dict[str, float]) -> float | None:
    """``float(text)`` (None when it is not a number), remembered in ``floats``."""
    try:
        value = float(text)
    except ValueError:
        return None
    if len(floats) >= _FLOATS_MAX:
        floats.clear()
    floats[text] = value
    return value


class PublicDecoder:
    """``decode_public`` bound to one ``ParseStats`` (the stream's)."""

    __slots__ = ("floats", "stats")

    def __init__(self, stats: ParseStats) -> None:
        self.stats = stats
        #: the memo of trade price strings, across this stream's frames
        self.floats: dict[str, float] = {}

    def __call__(self, raw: str | bytes) -> PublicMessage | None:
        """Decode one frame (see ``decode_public``)."""
        return decode_public(raw, self.stats, self.floats)
