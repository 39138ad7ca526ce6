"""``bybit.marketdata.MarketData``, the one market-data protocol, driven with plain calls.

No connection, no clock: frames go in, engine events and resubscribe actions come out.
The last tests check the claim that makes it *the* protocol: nothing else in
``scalper/`` applies a frame to a book, and the module does no I/O.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from scalper.bybit.marketdata import MarketData, Resubscribe
from scalper.bybit.parse import ParseStats, parse_message
from scalper.core.book import BookStatus
from scalper.core.model import BookUpdate, TradeTicks

SCALPER = Path(__file__).resolve().parents[2] / "scalper"
BOOK_METHODS = {"apply", "apply_snapshot", "apply_delta"}


def book(
    kind: str, u: int, bids: list[list[str]], asks: list[list[str]], symbol: str = "BTCUSDT"
) -> str:
    return json.dumps(
        {
            "topic": f"orderbook.50.{symbol}",
            "type": kind,
            "ts": 1000 + u,
            "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 7 * u},
            "cts": 1000 + u,
        }
    )


def trades(symbol: str = "BTCUSDT", n: int = 1) -> str:
    rows = [
        {"T": 2000 + i, "s": symbol, "S": "Buy", "v": "0.5", "p": "100.1", "i": f"t{i}"}
        for i in range(n)
    ]
    return json.dumps(
        {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": 2000, "data": rows}
    )


def following(symbol: str = "BTCUSDT") -> MarketData:
    market = MarketData(ParseStats(name="test"))
    assert market.follow(symbol, "0.1") == [f"orderbook.50.{symbol}", f"publicTrade.{symbol}"]
    return market


def snapshot(u: int = 1) -> str:
    return book("snapshot", u, [["100.0", "2"]], [["100.2", "3"]])


def test_snapshot_and_delta_give_valid_tops_and_trades_give_ticks() -> None:
    market = following()
    first = market.frame(snapshot())
    assert isinstance(first, BookUpdate) and first.top.valid
    assert (first.top.bid, first.top.ask) == (100.0, 100.2)
    second = market.frame(book("delta", 2, [["100.1", "1"]], []))
    assert isinstance(second, BookUpdate) and second.top.bid == 100.1
    assert market.last_seq == 14
    ticks = market.frame(trades(n=2))
    assert isinstance(ticks, TradeTicks) and len(ticks.trades) == 2
    assert (market.book_messages, market.trade_messages) == (2, 1)
    assert market.take_resubscribe() is None and market.invalidations == 0


def test_a_trade_frame_reaches_the_engine_as_parsed() -> None:
    # one type for a trade frame: the parser's message is the engine's event
    raw = trades(n=3)
    parsed = parse_message(raw, ParseStats(name="generic"))
    assert type(parsed) is TradeTicks
    assert following().frame(raw) == parsed
    assert following("ETHUSDT").frame(raw) is None  # another symbol's trades: not ours


def test_out_of_order_delta_invalidates_and_asks_for_one_resubscribe() -> None:
    market = following()
    market.frame(snapshot(5))
    event = market.frame(book("delta", 4, [["100.1", "1"]], []))  # u goes backwards
    assert isinstance(event, BookUpdate) and not event.top.valid  # entries stop on it
    assert market.resync_due and market.invalidations == 1
    action = market.take_resubscribe()
    assert action == Resubscribe(topics=("orderbook.50.BTCUSDT",), reason=action.reason)
    assert "u" in action.reason
    assert market.take_resubscribe() is None  # taken once
    # deltas are dropped (no event) until a snapshot repairs the book
    assert market.frame(book("delta", 6, [["100.1", "1"]], [])) is None
    assert market.book_messages == 3
    repaired = market.frame(snapshot(7))
    assert isinstance(repaired, BookUpdate) and repaired.top.valid
    assert market.invalidations == 1


def test_a_lost_frame_of_the_book_topic_invalidates_but_of_another_topic_not() -> None:
    market = following()
    market.frame(snapshot())
    assert market.frame('{"topic": "publicTrade.BTCUSDT", "data": [{"T": ') is None
    assert market.book is not None and market.book.valid and not market.resync_due
    event = market.frame('{"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {"u"')
    assert isinstance(event, BookUpdate) and not event.top.valid
    assert market.resync_due and market.invalidations == 1
    assert market.stats.counts == {"malformed_json": 2}  # counted by kind, both
    # a second lost frame of an invalid book asks for nothing more
    market.take_resubscribe()
    assert market.frame('{"topic": "orderbook.50.BTCUSDT", "data": ') is None
    assert not market.resync_due and market.invalidations == 1


def test_frames_of_another_symbol_are_counted_and_ignored() -> None:
    market = following()
    market.frame(snapshot())
    assert market.frame(book("snapshot", 1, [["5.0", "1"]], [["5.1", "1"]], "ETHUSDT")) is None
    assert market.frame(trades("ETHUSDT")) is None
    assert market.other_symbol_frames == 2 and market.book_messages == 1
    assert market.book is not None and market.book.best_bid() == (100.0, 2.0)


def test_follow_switches_to_a_new_empty_book_and_late_frames_are_dropped() -> None:
    market = following()
    market.frame(snapshot())
    old = market.book
    assert market.follow("BTCUSDT", "0.1") == []  # already followed: nothing to do
    assert market.book is old
    assert market.follow("ETHUSDT", "0.01") == ["orderbook.50.ETHUSDT", "publicTrade.ETHUSDT"]
    assert market.book is not old and market.book is not None
    assert market.book.symbol == "ETHUSDT" and not market.book.valid  # no snapshot yet
    assert market.frame(book("delta", 2, [["100.1", "1"]], [])) is None  # the old symbol's
    assert market.other_symbol_frames == 1
    assert market.frame(trades("BTCUSDT")) is None
    event = market.frame(book("snapshot", 1, [["5.00", "1"]], [["5.01", "1"]], "ETHUSDT"))
    assert isinstance(event, BookUpdate) and event.top.symbol == "ETHUSDT"


def test_a_gap_invalidates_and_shows_the_engine_the_invalid_top() -> None:
    market = following()
    assert market.invalidate("stream dropped: eof") is None  # no book yet to show
    market.frame(snapshot())
    shown = market.invalidate("stream dropped: eof")
    assert isinstance(shown, BookUpdate) and not shown.top.valid
    market.invalidate("archive gap: u=9", replace=False)  # keeps the first reason
    assert market.book is not None and market.book.invalid_reason == "stream dropped: eof"
    market.invalidate("stream reconnected")
    assert market.book.invalid_reason == "stream reconnected"
    assert not market.resync_due  # a reconnect resubscribes every topic by itself


def test_book_message_applies_a_decoded_message_with_the_same_rule() -> None:
    market = following()
    ok = market.book_message("snapshot", [["100.0", "1"]], [["100.2", "1"]], 3, 1003)
    assert ok is BookStatus.OK
    status = market.book_message("delta", [["100.3", "1"]], [], 4, 1004)  # crosses the ask
    assert status is BookStatus.INVALIDATED and market.resync_due
    assert market.book_messages == 2 and market.invalidations == 1


def _book_method_uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in BOOK_METHODS
    ]


def test_only_the_protocol_applies_frames_to_a_book() -> None:
    users = {
        str(path.relative_to(SCALPER)): lines
        for path in sorted(SCALPER.rglob("*.py"))
        if (lines := _book_method_uses(path))
    }
    # the book's own apply calls its delta/snapshot halves; everything else goes through
    # MarketData (a reference such as `apply = book.apply` counts too)
    users.pop("core/book.py", None)
    assert set(users) == {"bybit/marketdata.py"}, users


def test_the_protocol_module_does_no_io() -> None:
    tree = ast.parse((SCALPER / "bybit" / "marketdata.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"trio", "loguru", "time", "socket", "asyncio", "logging"}, imported
