"""Public stream fan-out: topics, subscribers, and Bybit's book/trade/ticker messages.

The venue calls ``publish(symbol, trades, now_ms)`` after every change to a symbol's
book; the hub turns the book's changed ticks into one ``delta`` per subscribed depth
(``u`` +1 per message of that topic, ``seq`` the market's cross sequence), one
``publicTrade`` message for the trades, and a ``tickers`` delta at most every 100 ms.
Each message is serialised once and queued on every subscriber's ``Outbox``.

Depth topics publish the top-N window of the book: levels that leave the window are
sent as size "0", levels that enter it with their size, so a client applying Bybit's
rules to snapshot + deltas holds exactly ``book.top_bids(N)`` / ``top_asks(N)``.
Depth 1 is snapshot-only, sent when the touch changes.

Faults hook in here: ``malformed`` (the next N messages are broken JSON or carry wrong
types) and ``out_of_order`` (the next N book deltas carry an update id going backwards).
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from .book import SimBook
from .market import Market, PublicTrade
from .marketrows import public_trade_item, ticker_stream_data
from .outbox import Outbox

__all__ = ["BOOK_DEPTHS", "PublicHub", "parse_topic"]

BOOK_DEPTHS = (1, 50, 200)
_TICKER_INTERVAL_MS = 100
#: Bybit re-pushes an unchanged orderbook.1 snapshot (same u) every 3 s
_DEPTH1_REPEAT_MS = 3000


def parse_topic(topic: str, symbols: dict[str, Any]) -> tuple[str, str, int] | None:
    """(kind, symbol, depth) of a valid public topic, None when it is not one of ours."""
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "orderbook":
        if parts[2] in symbols and parts[1].isdigit() and int(parts[1]) in BOOK_DEPTHS:
            return "orderbook", parts[2], int(parts[1])
        return None
    if len(parts) == 2 and parts[0] in ("publicTrade", "tickers") and parts[1] in symbols:
        return parts[0], parts[1], 0
    return None


class _BookTopic:
    """Per (symbol, depth): the window last published and the update id."""

    __slots__ = (
        "a_range",
        "b_range",
        "depth",
        "good_u",
        "last_push_ms",
        "last_top",
        "name",
        "sent_u",
        "symbol",
        "u",
    )

    def __init__(self, symbol: str, depth: int, u: int) -> None:
        self.symbol = symbol
        self.depth = depth
        self.name = f"orderbook.{depth}.{symbol}"
        self.u = u
        #: u carried by the last message sent, and by the last one sent unbroken
        self.sent_u = u
        self.good_u = u
        self.b_range = (1, 0)
        self.a_range = (1, 0)
        self.last_top: tuple[int, int, int, int] | None = None
        self.last_push_ms = 0


def _dumps(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


@attrs.define(eq=False)
class PublicHub:
    """Subscriptions of all public connections and the messages they are due."""

    market: Market
    subs: dict[str, set[Outbox]] = attrs.field(factory=dict, init=False)
    _books: dict[tuple[str, int], _BookTopic] = attrs.field(factory=dict, init=False)
    _u: dict[tuple[str, int], int] = attrs.field(factory=dict, init=False)
    _ticker_last: dict[str, dict[str, str]] = attrs.field(factory=dict, init=False)
    _ticker_ms: dict[str, int] = attrs.field(factory=dict, init=False)
    cs: int = attrs.field(default=0, init=False)
    #: fault counters (set by the fault registry)
    malformed: int = attrs.field(default=0, init=False)
    malformed_variant: str = attrs.field(default="json", init=False)
    out_of_order: int = attrs.field(default=0, init=False)
    #: messages queued to subscribers (for tests and throughput measurements)
    sent: int = attrs.field(default=0, init=False)

    # ------------------------------------------------------------ subscribe
    def subscribe(self, outbox: Outbox, topic: str, now_ms: int) -> None:
        """Add a subscriber (topic already validated) and queue its snapshot."""
        kind, symbol, depth = parse_topic(topic, self.market.symbols) or ("", "", 0)
        subs = self.subs.setdefault(topic, set())
        if outbox in subs:
            return
        subs.add(outbox)
        sm = self.market.symbols[symbol]
        if kind == "orderbook":
            bt = self._books.get((symbol, depth))
            if bt is None:
                # a fresh topic starts well above 1 (u == 1 means "service restarted")
                u = self._u.get((symbol, depth), 999) + 1
                bt = self._books[(symbol, depth)] = _BookTopic(symbol, depth, u)
                self._sync_window(bt, sm.book)
            bt.last_push_ms = now_ms
            outbox.put(self._snapshot(bt, sm.book, now_ms))
        elif kind == "tickers":
            data = ticker_stream_data(sm, now_ms)
            self._ticker_last.setdefault(symbol, data)
            self.cs += 1
            msg = {"topic": topic, "type": "snapshot", "data": data, "cs": self.cs, "ts": now_ms}
            outbox.put(_dumps(msg))

    def unsubscribe(self, outbox: Outbox, topic: str) -> None:
        """Remove a subscriber; forget the topic's state once nobody listens."""
        subs = self.subs.get(topic)
        if subs is None:
            return
        subs.discard(outbox)
        if not subs:
            del self.subs[topic]
            kind, symbol, depth = parse_topic(topic, self.market.symbols) or ("", "", 0)
            if kind == "orderbook":
                bt = self._books.pop((symbol, depth), None)
                if bt is not None:
                    self._u[(symbol, depth)] = bt.u
            elif kind == "tickers":
                self._ticker_last.pop(symbol, None)

    def drop(self, outbox: Outbox) -> None:
        """Remove a closed connection from every topic."""
        for topic in [t for t, subs in self.subs.items() if outbox in subs]:
            self.unsubscribe(outbox, topic)

    # -------------------------------------------------------------- publish
    def publish(self, symbol: str, trades: list[PublicTrade], now_ms: int) -> None:
        """Queue what changed for ``symbol`` since the last call; clear the change sets."""
        sm = self.market.symbols[symbol]
        book = sm.book
        if self.subs:
            for depth in BOOK_DEPTHS:
                bt = self._books.get((symbol, depth))
                if bt is not None:
                    text = self._delta(bt, book, sm.seq, now_ms)
                    if text is not None and not self._emit(bt.name, text):
                        bt.good_u = bt.sent_u
            if trades:
                topic = f"publicTrade.{symbol}"
                if topic in self.subs:
                    spec = sm.spec
                    msg = {
                        "topic": topic,
                        "type": "snapshot",
                        "ts": now_ms,
                        "data": [public_trade_item(t, spec) for t in trades],
                    }
                    self._emit(topic, _dumps(msg))
            last = self._ticker_last.get(symbol)
            if last is not None and now_ms - self._ticker_ms.get(symbol, 0) >= _TICKER_INTERVAL_MS:
                self._ticker_ms[symbol] = now_ms
                data = ticker_stream_data(sm, now_ms)
                changed = {k: v for k, v in data.items() if last.get(k) != v}
                if changed:
                    self._ticker_last[symbol] = data
                    changed["symbol"] = symbol
                    self.cs += 1
                    topic = f"tickers.{symbol}"
                    msg = {
                        "topic": topic,
                        "type": "delta",
                        "data": changed,
                        "cs": self.cs,
                        "ts": now_ms,
                    }
                    self._emit(topic, _dumps(msg))
        book.changed_bids.clear()
        book.changed_asks.clear()

    def _emit(self, topic: str, text: str) -> bool:
        """Queue ``text`` on the topic's subscribers; True when a fault broke it."""
        subs = self.subs.get(topic)
        if not subs:
            return False
        broken = False
        if self.malformed:
            self.malformed -= 1
            text = self._break(text)
            broken = True
        for outbox in subs:
            outbox.put(text)
        self.sent += len(subs)
        return broken

    def _break(self, text: str) -> str:
        if self.malformed_variant == "types":
            msg = orjson.loads(text)
            msg["ts"] = str(msg.get("ts"))
            data = msg.get("data")
            if isinstance(data, dict):
                msg["data"] = [data]
            elif isinstance(data, list):
                msg["data"] = {"items": "not-a-list"}
            return _dumps(msg)
        return text[: max(1, len(text) // 2)]

    # ------------------------------------------------------------ messages
    @staticmethod
    def _sync_window(bt: _BookTopic, book: SimBook) -> None:
        bt.b_range = book.bid_range(bt.depth)
        bt.a_range = book.ask_range(bt.depth)
        bt.last_top = _top(book)

    def _snapshot(self, bt: _BookTopic, book: SimBook, now_ms: int) -> str:
        spec = self.market.symbols[bt.symbol].spec
        ps, qs = spec.price_str, spec.qty_str
        data = {
            "s": bt.symbol,
            "b": [[ps(t), qs(n)] for t, n in book.top_bids(bt.depth)],
            "a": [[ps(t), qs(n)] for t, n in book.top_asks(bt.depth)],
            "u": bt.u,
            "seq": self.market.symbols[bt.symbol].seq,
        }
        return _dumps(
            {"topic": bt.name, "type": "snapshot", "ts": now_ms, "data": data, "cts": now_ms}
        )

    def _delta(self, bt: _BookTopic, book: SimBook, seq: int, now_ms: int) -> str | None:
        spec = self.market.symbols[bt.symbol].spec
        if bt.depth == 1:  # snapshot-only; unchanged for 3 s: the same snapshot again
            top = _top(book)
            if top == bt.last_top:
                if now_ms - bt.last_push_ms < _DEPTH1_REPEAT_MS:
                    return None
            else:
                bt.u += 1
            bt.sent_u = bt.u
            bt.last_push_ms = now_ms
            self._sync_window(bt, book)
            return self._snapshot(bt, book, now_ms)
        ps, qs = spec.price_str, spec.qty_str
        nb = book.bid_range(bt.depth)
        na = book.ask_range(bt.depth)
        bids = _window_delta(bt.b_range, nb, book.changed_bids, book.bids)
        asks = _window_delta(bt.a_range, na, book.changed_asks, book.asks)
        bt.b_range, bt.a_range = nb, na
        if not bids and not asks:
            return None
        bids.sort(reverse=True)
        asks.sort()
        bt.u += 1
        u = bt.u
        if self.out_of_order and not self.malformed:
            # below the last u the client could read (broken frames do not count), and
            # not while frames are being broken: the client must be able to see it
            self.out_of_order -= 1
            u = bt.good_u - 1
        bt.sent_u = u
        data = {
            "s": bt.symbol,
            "b": [[ps(t), qs(n) if n else "0"] for t, n in bids],
            "a": [[ps(t), qs(n) if n else "0"] for t, n in asks],
            "u": u,
            "seq": seq,
        }
        return _dumps(
            {"topic": bt.name, "type": "delta", "ts": now_ms, "data": data, "cts": now_ms}
        )


def _top(book: SimBook) -> tuple[int, int, int, int]:
    return (
        book.bid_top,
        book.bids.get(book.bid_top, 0),
        book.ask_top,
        book.asks.get(book.ask_top, 0),
    )


def _window_delta(
    old: tuple[int, int], new: tuple[int, int], changed: set[int], levels: dict[int, int]
) -> list[tuple[int, int]]:
    """Levels (tick, lots; 0 = delete) that turn window ``old`` into window ``new``."""
    ol, oh = old
    nl, nh = new
    out: dict[int, int] = {}
    if ol <= oh:  # levels that left the window
        for t in range(ol, min(oh, nl - 1) + 1):
            out[t] = 0
        for t in range(max(ol, nh + 1), oh + 1):
            out[t] = 0
    if nl <= nh:
        if ol > oh:  # window was empty: everything is new
            for t in range(nl, nh + 1):
                out[t] = levels[t]
        else:
            for t in range(nl, min(nh, ol - 1) + 1):
                out[t] = levels[t]
            for t in range(max(nl, oh + 1), nh + 1):
                out[t] = levels[t]
        for t in changed:
            if nl <= t <= nh:
                out[t] = levels[t]
    return list(out.items())
