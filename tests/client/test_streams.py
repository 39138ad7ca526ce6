"""PublicStream / PrivateStream over the in-memory fake endpoint of test_ws (MockClock)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.lowlevel

from scalper.bybit.auth import Credentials
from scalper.bybit.streams import (
    PrivateStream,
    PublicStream,
    open_private_stream,
    open_public_stream,
)
from scalper.bybit.ws import Connected, Disconnected, WsOptions, open_ws
from scalper.core.model import BookUpdate, Fill, OrderUpdate, PositionSnapshot, TradeTicks

from .test_ws import KEY, POLICY, SECRET, FakeServer, FakeWs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"


def sample(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def book(
    kind: str, u: int, bids: list[list[str]], asks: list[list[str]], symbol: str = "BTCUSDT"
) -> dict[str, Any]:
    return {
        "topic": f"orderbook.50.{symbol}",
        "type": kind,
        "ts": 1000 + u,
        "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": u},
        "cts": 1000 + u,
    }


async def nxt(stream: Any) -> Any:
    with trio.fail_after(300):
        return await stream.__anext__()


async def test_public_book_invalid_resubscribes_and_snapshot_repairs(autojump_clock: Any) -> None:
    server = FakeServer()
    async with open_public_stream(
        "x", "BTCUSDT", "0.1", options=WsOptions(connect=server.connect, policy=POLICY)
    ) as stream:
        assert isinstance(stream, PublicStream)
        assert await nxt(stream) == Connected("public", reconnect=False, count=1)
        assert server.ws.topics == ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
        ws = server.ws
        ws.push(book("snapshot", 10, [["100.0", "1"]], [["100.5", "2"]]))
        ev = await nxt(stream)
        assert (
            isinstance(ev, BookUpdate)
            and ev.top.valid
            and (ev.top.bid, ev.top.ask) == (100.0, 100.5)
        )
        ws.push(book("delta", 11, [["100.2", "3"]], []))
        ev = await nxt(stream)
        assert ev.top.bid == 100.2 and ev.top.bid_size == 3.0
        # out of order: u goes backwards -> invalid, resubscribed
        ws.push(book("delta", 9, [["99.0", "1"]], []))
        ev = await nxt(stream)
        assert isinstance(ev, BookUpdate) and not ev.top.valid
        assert stream.resyncs == 1
        ops = [(m["op"], m["args"]) for m in ws.sent if m["op"] != "ping"][-2:]
        assert ops == [
            ("unsubscribe", ["orderbook.50.BTCUSDT"]),
            ("subscribe", ["orderbook.50.BTCUSDT"]),
        ]
        ws.push(book("delta", 12, [["100.3", "1"]], []))  # dropped while invalid
        ws.push(book("snapshot", 20, [["101.0", "1"]], [["101.5", "1"]]))
        ev = await nxt(stream)
        assert ev.top.valid and ev.top.bid == 101.0


async def test_unparseable_book_frame_invalidates_and_resubscribes(autojump_clock: Any) -> None:
    # A delta that cannot be parsed is a change the book silently misses; nothing later
    # would reveal it (Bybit promises no gap-free u), so the book is re-requested at once.
    server = FakeServer()
    async with open_public_stream(
        "x", "BTCUSDT", "0.1", options=WsOptions(connect=server.connect, policy=POLICY)
    ) as stream:
        await nxt(stream)
        ws = server.ws
        ws.push(book("snapshot", 10, [["100.0", "1"]], [["100.5", "2"]]))
        assert (await nxt(stream)).top.valid
        ws.push('{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["10')
        ev = await nxt(stream)
        assert isinstance(ev, BookUpdate) and not ev.top.valid
        assert stream.resyncs == 1
        assert stream.stats.errors == 1
        ops = [(m["op"], m["args"]) for m in ws.sent if m["op"] != "ping"][-2:]
        assert ops == [
            ("unsubscribe", ["orderbook.50.BTCUSDT"]),
            ("subscribe", ["orderbook.50.BTCUSDT"]),
        ]
        # a bad frame of another topic leaves the book alone
        ws.push(book("snapshot", 20, [["101.0", "1"]], [["101.5", "1"]]))
        assert (await nxt(stream)).top.valid
        ws.push('{"topic":"publicTrade.BTCUSDT","data":[{"p": oops')
        ws.push(book("delta", 21, [["101.1", "2"]], []))
        ev = await nxt(stream)
        assert ev.top.valid and ev.top.bid == 101.1
        assert stream.resyncs == 1


async def test_public_drop_invalidates_then_reconnect_resubscribes(autojump_clock: Any) -> None:
    server = FakeServer()
    async with open_public_stream(
        "x", "BTCUSDT", "0.1", options=WsOptions(connect=server.connect, policy=POLICY)
    ) as stream:
        await nxt(stream)
        server.ws.push(book("snapshot", 5, [["100.0", "1"]], [["100.5", "2"]]))
        await nxt(stream)
        server.ws.drop()
        gone = await nxt(stream)
        assert isinstance(gone, Disconnected)
        assert stream.book is not None and not stream.book.valid
        back = await nxt(stream)
        assert back.reconnect is True
        assert server.ws.topics == ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
        server.ws.push(
            book("snapshot", 3, [["99.0", "1"]], [["99.5", "2"]])
        )  # lower u is fine after a drop
        ev = await nxt(stream)
        assert ev.top.valid and ev.top.bid == 99.0


async def test_public_switch_symbol_and_trades(autojump_clock: Any) -> None:
    server = FakeServer()
    async with open_public_stream(
        "x", "BTCUSDT", "0.1", options=WsOptions(connect=server.connect, policy=POLICY)
    ) as stream:
        await nxt(stream)
        await stream.follow("ETHUSDT", "0.01")
        assert server.ws.topics == ["orderbook.50.ETHUSDT", "publicTrade.ETHUSDT"]
        server.ws.push(
            book("snapshot", 5, [["100.0", "1"]], [["100.5", "2"]], symbol="BTCUSDT")
        )  # late
        server.ws.push(sample("ws_public_publicTrade"))  # BTCUSDT trade: ignored
        trade = sample("ws_public_publicTrade")
        trade["topic"] = "publicTrade.ETHUSDT"
        trade["data"][0]["s"] = "ETHUSDT"
        server.ws.push(trade)
        ev = await nxt(stream)
        assert (
            isinstance(ev, TradeTicks) and ev.symbol == "ETHUSDT" and ev.trades[0].price == 16578.5
        )
        server.ws.push("{garbage")
        server.ws.push(
            book("snapshot", 1, [["2000.01", "1"]], [["2000.02", "1"]], symbol="ETHUSDT")
        )
        ev = await nxt(stream)
        assert ev.top.symbol == "ETHUSDT"
        assert stream.stats.errors == 0  # the garbage had no topic: the connection counted it
        assert stream.conn.control_stats.counts == {"malformed_json": 1}


async def test_private_stream_deduplicates_pushes(autojump_clock: Any) -> None:
    server = FakeServer(private=True)
    async with open_private_stream(
        "x",
        Credentials(KEY, SECRET),
        options=WsOptions(connect=server.connect, policy=POLICY, clock_ms=server.now_ms),
    ) as stream:
        assert isinstance(stream, PrivateStream)
        assert await nxt(stream) == Connected("private", reconnect=False, count=1)
        assert server.ws.topics == ["order", "execution", "position", "wallet"]
        order = sample("ws_private_order")
        order["data"][0]["category"] = "linear"  # the documented sample is an option order
        execution = sample("ws_private_execution")
        ws = server.ws
        ws.push(order)
        ws.push(order)  # repeated push
        ws.push(execution)
        ws.push(execution)  # repeated fill
        changed = json.loads(json.dumps(order))
        changed["data"][0]["updatedTime"] = "1672364262999"
        ws.push(changed)  # a genuinely new update
        ws.push("not json")
        ws.push(sample("ws_private_position"))
        got = [await nxt(stream) for _ in range(4)]
        assert [type(g) for g in got] == [OrderUpdate, Fill, OrderUpdate, PositionSnapshot]
        assert got[2].updated_ms == 1672364262999
        assert stream.duplicates == 2
        assert stream.conn.control_stats.counts["malformed_json"] == 1
        ws.push('{"topic": "order", "data": [{"orderId": 5}]}')
        ws.push(sample("ws_private_wallet"))
        wallet = await nxt(stream)
        assert wallet.total_equity > 0
        assert stream.stats.counts == {"missing_field": 1}


async def test_amend_within_the_same_ms_is_not_a_duplicate(autojump_clock: Any) -> None:
    server = FakeServer(private=True)
    async with open_private_stream(
        "x",
        Credentials(KEY, SECRET),
        options=WsOptions(connect=server.connect, policy=POLICY, clock_ms=server.now_ms),
    ) as stream:
        assert isinstance(await nxt(stream), Connected)
        order = sample("ws_private_order")
        row = order["data"][0]
        row.update(category="linear", orderStatus="New", cumExecQty="0", leavesQty="1")
        row.update(price="72.5", qty="1")
        amends = [{"price": "72.6"}, {"qty": "2", "leavesQty": "2"}, {"leavesQty": "0.5"}]
        pushes = [row]
        for change in amends:
            pushes.append(dict(pushes[-1], **change))  # same updatedTime (same ms)
        for p in [*pushes, pushes[-1]]:  # the last one repeated: a real duplicate
            server.ws.push({**order, "data": [p]})
        server.ws.push(sample("ws_private_position"))  # read past the duplicate
        got = [await nxt(stream) for _ in range(4)]
        assert isinstance(await nxt(stream), PositionSnapshot)
        assert [(u.price, u.qty, u.leaves_qty) for u in got] == [
            (Decimal("72.5"), Decimal("1"), Decimal("1")),
            (Decimal("72.6"), Decimal("1"), Decimal("1")),
            (Decimal("72.6"), Decimal("2"), Decimal("2")),
            (Decimal("72.6"), Decimal("2"), Decimal("0.5")),
        ]
        assert stream.duplicates == 1


class _Sink:
    """A frame sink noting, for each frame, how many scheduling rounds had passed."""

    def __init__(self, rounds: list[int]) -> None:
        self.rounds = rounds
        self.frames: list[tuple[int, int]] = []
        self.drops: list[str] = []

    def frame(self, raw: str | bytes) -> None:
        self.frames.append((self.rounds[0], json.loads(raw)["data"]["u"]))

    def dropped(self, reason: str) -> None:
        self.drops.append(reason)


class _QueuedWs(FakeWs):
    """The fake, exposing its queue under trio-websocket's (private) name."""

    @property
    def _recv_channel(self) -> Any:
        return self._from_server


class _QueuedServer(FakeServer):
    ws_kind = _QueuedWs


async def _sink_rounds(server: FakeServer) -> tuple[list[int], list[int], _Sink]:
    rounds = [0]
    sink = _Sink(rounds)

    async def ticker() -> None:
        for _ in range(30):
            await trio.lowlevel.checkpoint()
            rounds[0] += 1

    policy = attrs.evolve(POLICY, burst=3)
    with trio.fail_after(60):
        async with open_ws("x", WsOptions(connect=server.connect, policy=policy)) as conn:
            conn.deliver_to(sink)
            for u in range(1, 6):
                server.ws.push(book("delta", u, [], []))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
            server.ws.drop()
            first = await conn.__anext__()
            assert isinstance(first, Connected)  # queued at connect; no frames came this way
            assert isinstance(await conn.__anext__(), Disconnected)
            assert len(sink.drops) == 1  # the sink heard of the drop before the marker
    return [r for r, _ in sink.frames], [u for _, u in sink.frames], sink


async def test_a_sink_takes_queued_frames_in_bursts_without_a_checkpoint_each(
    autojump_clock: Any,
) -> None:
    # With trio-websocket's queue of parsed frames at hand, the reader hands up to
    # ``burst`` (3) of them to the sink back to back; the plain fake: one per run.
    rounds, order, _ = await _sink_rounds(_QueuedServer())
    assert order == [1, 2, 3, 4, 5]
    assert rounds[0] == rounds[1] == rounds[2]  # one burst, no checkpoint in between
    rounds, order, _ = await _sink_rounds(FakeServer())
    assert order == [1, 2, 3, 4, 5]
    # one frame per reader run: trio may run the ticker and the reader in either order
    # within a round, so two frames can share a count, never three
    assert not any(rounds[i] == rounds[i + 1] == rounds[i + 2] for i in range(3))


class _BufferedWs(FakeWs):
    """The fake, telling how many frames it holds already, as ``bybit.wsfast`` does."""

    @property
    def buffered(self) -> Any:
        channel = self._from_server

        class _Count:
            def __len__(self) -> int:
                return channel.statistics().current_buffer_used

        return _Count()


class _BufferedServer(FakeServer):
    ws_kind = _BufferedWs


async def test_the_sink_is_told_which_frames_have_more_of_their_read_behind_them(
    autojump_clock: Any,
) -> None:
    server = _BufferedServer()
    seen: list[tuple[int, bool]] = []

    class Sink:
        def frame(self, raw: str | bytes) -> None:
            seen.append((json.loads(raw)["data"]["u"], conn.more))

        def dropped(self, reason: str) -> None:
            pass

    with trio.fail_after(60):
        async with open_ws("x", WsOptions(connect=server.connect, policy=POLICY)) as conn:
            conn.deliver_to(Sink())
            for u in range(1, 4):  # one read's worth: three frames at once
                server.ws.push(book("delta", u, [], []))
            for _ in range(10):
                if len(seen) == 3:
                    break
                await trio.lowlevel.checkpoint()
            server.ws.push(book("delta", 4, [], []))  # alone
            for _ in range(10):
                if len(seen) == 4:
                    break
                await trio.lowlevel.checkpoint()
    assert seen == [(1, True), (2, True), (3, False), (4, False)]
