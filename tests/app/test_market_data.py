"""The market-data task against a fake public WebSocket, under MockClock.

What is checked: a switch unsubscribes the old symbol and its frames still in flight
never reach the strategy; a book that turns invalid is re-requested at once; a drop
tells the strategy the book is invalid and a reconnect re-subscribes and resyncs;
malformed frames are counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio
import trio.testing
from loguru import logger

from scalper.app.feed import MarketFeed, MarketMessage, MarketReceiver
from scalper.app.market_data import run_market_data
from scalper.app.metrics import Metrics
from scalper.core.model import BookUpdate, TradeTicks
from tests.unit._engine_helpers import instrument

from .ws_fakes import POLICY, FakeWsServer, book_frame, trade_frame

SOL_TOPICS = ["orderbook.50.SOLUSDT", "publicTrade.SOLUSDT"]
XRP_TOPICS = ["orderbook.50.XRPUSDT", "publicTrade.XRPUSDT"]
INSTRUMENTS = {s: instrument(s) for s in ("SOLUSDT", "XRPUSDT")}
BIDS = [("100.00", "5")]
ASKS = [("100.10", "5")]


@attrs.define
class Running:
    server: FakeWsServer
    subscriptions: trio.MemorySendChannel[str]
    market: MarketReceiver
    metrics: Metrics
    reconnects: list[str]
    gaps: list[str] = attrs.field(factory=list)

    async def follow(self, symbol: str) -> None:
        await self.subscriptions.send(symbol)
        await trio.testing.wait_all_tasks_blocked()

    async def push(self, *frames: dict[str, Any] | str) -> list[MarketMessage]:
        """Push frames on the current connection; what reached the strategy, taken after
        each frame (a strategy that keeps up: nothing is coalesced)."""
        out = []
        for frame in frames:
            self.server.ws.push(frame)
            await trio.testing.wait_all_tasks_blocked()
            out.extend(self.received())
        return out

    def received(self) -> list[MarketMessage]:
        out = []
        while True:
            try:
                out.append(self.market.receive_nowait()[1])
            except trio.WouldBlock:
                return out


@asynccontextmanager
async def market_data() -> AsyncIterator[Running]:
    server = FakeWsServer()
    subs_send, subs = trio.open_memory_channel[str](4)
    metrics = Metrics()
    feed = MarketFeed(metrics)
    reconnects: list[str] = []
    gaps: list[str] = []

    async def on_reconnect(reason: str) -> None:
        reconnects.append(reason)

    async def on_gap(reason: str) -> None:
        gaps.append(reason)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(run_market_data, policy=POLICY, connect=server.connect, on_gap=on_gap),
            "wss://fake/v5/public/linear",
            subs,
            feed,
            INSTRUMENTS,
            on_reconnect,
            metrics,
        )
        yield Running(server, subs_send, feed.receiver, metrics, reconnects, gaps)
        nursery.cancel_scope.cancel()


def _tops(messages: list[MarketMessage]) -> list[tuple[str, float, bool]]:
    return [(m.top.symbol, m.top.bid, m.top.valid) for m in messages if isinstance(m, BookUpdate)]


async def test_switch_unsubscribes_and_drops_frames_of_the_old_symbol(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with market_data() as md:
        await md.follow("SOLUSDT")
        assert md.server.data_ops() == [("subscribe", SOL_TOPICS)]
        got = await md.push(
            book_frame("SOLUSDT", "snapshot", 10, BIDS, ASKS), trade_frame("SOLUSDT", "100.05")
        )
        assert _tops(got) == [("SOLUSDT", 100.0, True)]
        assert [m.symbol for m in got if isinstance(m, TradeTicks)] == ["SOLUSDT"]

        await md.follow("XRPUSDT")
        assert md.server.data_ops()[1:] == [("unsubscribe", SOL_TOPICS), ("subscribe", XRP_TOPICS)]
        books_before = md.metrics.book_updates
        # the old symbol's frames still in flight: nothing reaches the strategy
        late = await md.push(
            book_frame("SOLUSDT", "delta", 11, [("100.01", "1")], []),
            trade_frame("SOLUSDT", "100.02"),
        )
        assert late == []
        assert md.metrics.book_updates == books_before
        got = await md.push(book_frame("XRPUSDT", "snapshot", 5, [("0.5000", "9")], ASKS))
        assert _tops(got) == [("XRPUSDT", 0.5, True)]

        # following the same symbol again changes nothing on the wire
        await md.follow("XRPUSDT")
        assert len(md.server.data_ops()) == 3


async def test_invalid_book_is_resubscribed_at_once_and_repaired_by_the_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        async with market_data() as md:
            await md.follow("SOLUSDT")
            await md.push(book_frame("SOLUSDT", "snapshot", 10, BIDS, ASKS))
            # an update id going backwards invalidates the book
            got = await md.push(book_frame("SOLUSDT", "delta", 9, [("100.05", "1")], []))
            assert _tops(got) == [("SOLUSDT", 100.0, False)]  # the strategy is told
            assert md.server.data_ops()[1:] == [
                ("unsubscribe", ["orderbook.50.SOLUSDT"]),
                ("subscribe", ["orderbook.50.SOLUSDT"]),
            ]
            # deltas before the repairing snapshot are not applied and ask nothing more
            got = await md.push(book_frame("SOLUSDT", "delta", 11, [("100.06", "1")], []))
            assert all(not valid for _, _, valid in _tops(got))
            assert len(md.server.data_ops()) == 3
            got = await md.push(book_frame("SOLUSDT", "snapshot", 20, [("100.02", "3")], ASKS))
            assert _tops(got) == [("SOLUSDT", 100.02, True)]
    finally:
        logger.remove(sink)
    assert any("book invalid (update id went backwards" in w for w in warnings)


async def test_disconnect_feeds_an_invalid_top_and_reconnect_resubscribes_and_resyncs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with market_data() as md:
        await md.follow("SOLUSDT")
        await md.push(book_frame("SOLUSDT", "snapshot", 10, BIDS, ASKS))
        first = md.server.ws
        first.drop()
        await trio.testing.wait_all_tasks_blocked()
        assert _tops(md.received()) == [("SOLUSDT", 100.0, False)]
        await trio.sleep(2)  # backoff (virtual time), then the new connection
        assert len(md.server.conns) == 2
        assert md.reconnects == ["public stream reconnected"]
        assert md.server.ws.ops == [("subscribe", SOL_TOPICS)]  # re-subscribed by itself
        # the old book stays invalid until the new snapshot arrives
        got = await md.push(book_frame("SOLUSDT", "delta", 11, [("100.01", "1")], []))
        assert all(not valid for _, _, valid in _tops(got))
        got = await md.push(book_frame("SOLUSDT", "snapshot", 30, BIDS, ASKS))
        assert _tops(got) == [("SOLUSDT", 100.0, True)]


async def test_malformed_frames_are_counted_and_skipped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with market_data() as md:
        await md.follow("SOLUSDT")
        broken = '{"topic":"orderbook.50.SOLUSDT","type":"delta","ts":1,"da'
        got = await md.push(broken, broken, book_frame("SOLUSDT", "snapshot", 10, BIDS, ASKS))
        assert md.metrics.parse_errors == 2
        assert _tops(got) == [("SOLUSDT", 100.0, True)]


async def test_lost_book_frames_are_reported_as_a_market_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 9: the bot turns a gap into Resync(market_gap=True), which clears the
    # engine's trade window; a book that lost frames is such a gap (so is a reconnect,
    # reported through on_reconnect above).
    async with market_data() as md:
        await md.follow("SOLUSDT")
        await md.push(book_frame("SOLUSDT", "snapshot", 10, BIDS, ASKS))
        assert md.gaps == []
        await md.push('{"topic":"orderbook.50.SOLUSDT","type":"delta","ts":1,"da')
        await md.push(book_frame("SOLUSDT", "snapshot", 20, BIDS, ASKS))  # the repair
        assert md.gaps == ["public book frames lost: book re-requested"]
        await md.push(book_frame("SOLUSDT", "delta", 9, [("100.05", "1")], []))
        assert len(md.gaps) == 2  # an update id going backwards: a gap too
