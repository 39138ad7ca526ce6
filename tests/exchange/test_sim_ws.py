"""Both WebSockets of the simulator: acks, pongs, pushes, refusals, idle drop, book rebuild."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import (
    assert_shape,
    hmac_hex,
    now_ms,
    private_auth,
    quiesce,
    recv,
    recv_until,
    sample,
    send,
)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim(SimConfig(seed=21, rate=600)) as running:
        yield running


@pytest.fixture
async def public(sim: Sim) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(sim.ws_public_url) as ws:
        yield ws


async def test_public_subscribe_ack_and_pong_shapes(public: WebSocketConnection) -> None:
    await send(public, {"req_id": "r1", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
    ack = await recv(public)
    assert_shape(sample("ws_public_subscribe"), ack)
    assert (ack["success"], ack["op"], ack["req_id"]) == (True, "subscribe", "r1")
    await send(public, {"req_id": "p1", "op": "ping"})
    pong = await recv_until(public, lambda m: m.get("op") == "ping")
    assert_shape(sample("ws_public_ping_pong"), pong)
    assert pong["ret_msg"] == "pong"


@pytest.mark.parametrize(
    "topic",
    [
        "orderbook.1.ETHUSDT",
        "orderbook.50.ETHUSDT",
        "orderbook.200.ETHUSDT",
        "publicTrade.ETHUSDT",
        "tickers.ETHUSDT",
    ],
)
async def test_public_topics_have_bybits_shape(public: WebSocketConnection, topic: str) -> None:
    await send(public, {"op": "subscribe", "args": [topic]})
    assert (await recv(public))["success"] is True
    first = await recv(public)
    assert first["topic"] == topic
    if topic.startswith("orderbook"):
        assert_shape(sample("ws_public_orderbook_snapshot"), first)
        depth = int(topic.split(".")[1])
        assert len(first["data"]["b"]) == len(first["data"]["a"]) == depth
        if depth > 1:
            delta = await recv_until(public, lambda m: m.get("type") == "delta")
            assert_shape(sample("ws_public_orderbook_delta"), delta)
            assert delta["data"]["u"] == first["data"]["u"] + 1
        else:
            again = await recv(public)
            assert again["type"] == "snapshot"  # depth 1 is snapshot-only
    elif topic.startswith("publicTrade"):
        assert_shape(sample("ws_public_publicTrade"), first)
    else:
        assert_shape(sample("ws_public_tickers_linear_snapshot"), first)
        delta = await recv_until(public, lambda m: m.get("type") == "delta")
        assert delta["data"]["symbol"] == "ETHUSDT"
        assert delta["cs"] > first["cs"]


@pytest.mark.parametrize(
    "msg",
    [
        {"op": "subscribe", "args": ["orderbook.50.NOPEUSDT"]},
        {"op": "subscribe", "args": ["orderbook.25.BTCUSDT"]},
        {"op": "subscribe", "args": ["kline.1.BTCUSDT.extra"]},
        {"op": "subscribe", "args": "publicTrade.BTCUSDT"},
        {"op": "subscribe", "args": [1, 2]},
        {"op": "launch"},
        {"args": []},
    ],
)
async def test_bad_public_requests_get_success_false(
    public: WebSocketConnection, msg: dict
) -> None:
    await send(public, msg)
    reply = await recv(public)
    assert reply["success"] is False
    assert reply["ret_msg"]
    await send(public, {"op": "ping"})  # the connection is still fine
    assert (await recv(public))["ret_msg"] == "pong"


async def test_malformed_json_from_client_gets_an_answer(public: WebSocketConnection) -> None:
    await public.send_message("{this is not json")
    reply = await recv(public)
    assert reply["success"] is False
    await public.send_message("[1,2,3]")
    assert (await recv(public))["success"] is False


async def test_duplicate_subscribe_is_refused(public: WebSocketConnection) -> None:
    await send(public, {"op": "subscribe", "args": ["publicTrade.SOLUSDT"]})
    assert (await recv(public))["success"] is True
    await send(public, {"op": "subscribe", "args": ["publicTrade.SOLUSDT"]})
    reply = await recv_until(public, lambda m: "success" in m)
    assert reply["success"] is False


async def test_unsubscribe_stops_the_topic(sim: Sim, public: WebSocketConnection) -> None:
    await send(public, {"op": "subscribe", "args": ["orderbook.50.XRPUSDT"]})
    assert (await recv(public))["success"] is True
    await send(public, {"op": "unsubscribe", "args": ["orderbook.50.XRPUSDT"]})
    await recv_until(public, lambda m: m.get("op") == "unsubscribe")
    assert "orderbook.50.XRPUSDT" not in sim.exchange.public.subs


async def test_private_pong_shape_and_auth_refusals(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_private_url) as ws:
        await send(ws, {"op": "subscribe", "args": ["order"]})
        assert (await recv(ws))["ret_msg"] == "Request not authorized"
        await send(ws, {"req_id": "p9", "op": "ping"})
        pong = await recv(ws)
        assert_shape(sample("ws_private_ping_pong"), pong)
        assert pong["req_id"] == "p9" and pong["args"][0].isdigit()

        expired = now_ms() - 1
        await send(
            ws,
            {
                "op": "auth",
                "args": ["sim-key", expired, hmac_hex("sim-secret", f"GET/realtime{expired}")],
            },
        )
        assert (await recv(ws))["success"] is False
        later = now_ms() + 5000
        await send(
            ws, {"op": "auth", "args": ["sim-key", later, hmac_hex("bad", f"GET/realtime{later}")]}
        )
        assert (await recv(ws))["success"] is False
        await send(ws, {"op": "auth", "args": ["who", later, "00"]})
        assert (await recv(ws))["success"] is False
        await send(ws, {"op": "auth", "args": "sim-key"})
        assert (await recv(ws))["success"] is False
        ok = await private_auth(ws)
        assert_shape(sample("ws_private_auth"), ok)
        assert ok["success"] is True
        await send(ws, {"op": "subscribe", "args": ["order", "nonsense"]})
        assert (await recv(ws))["success"] is False
        await send(ws, {"op": "subscribe", "args": ["order.linear", "wallet"]})
        ack = await recv(ws)
        assert_shape(sample("ws_private_subscribe"), ack)


async def test_idle_connection_is_dropped() -> None:
    async with (
        open_sim(SimConfig(seed=2, ws_idle_timeout_s=0.3)) as sim,
        open_websocket_url(sim.ws_public_url) as ws,
    ):
        await send(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
            while True:  # data flows to us, but we send nothing for 0.3 s
                await ws.get_message()
    assert closed.value.reason.code == 1000
    assert "idle" in (closed.value.reason.reason or "")


class ClientBook:
    """A client's book, built with Bybit's documented rules (not our own code)."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.u = 0
        self.deltas = 0

    def apply(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.bids = dict(data["b"])
            self.asks = dict(data["a"])
        else:
            assert data["u"] == self.u + 1  # the simulator's u rises by one per message
            for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                for price, size in levels:
                    if size == "0":
                        side.pop(price, None)
                    else:
                        side[price] = size
            self.deltas += 1
        self.u = data["u"]

    async def follow(self, ws: WebSocketConnection, deltas: int) -> None:
        """Apply messages until ``deltas`` more deltas have been applied (bounded)."""
        target = self.deltas + deltas
        with trio.fail_after(10):
            while self.deltas < target:
                msg = await recv(ws)
                if "topic" in msg:
                    self.apply(msg)


@pytest.mark.parametrize("depth", [50, 200])
async def test_client_book_from_snapshot_and_deltas_equals_the_simulators(
    sim: Sim, public: WebSocketConnection, depth: int
) -> None:
    topic = f"orderbook.{depth}.BTCUSDT"
    await send(public, {"op": "subscribe", "args": [topic]})
    assert (await recv(public))["success"] is True
    client = ClientBook()
    await client.follow(public, deltas=30)  # the market moves for a while
    # then stands still; every frame sent before is read (up to the pong): the client
    # has applied everything the simulator's book went through
    for msg in await quiesce(sim, public):
        client.apply(msg)
    assert client.deltas >= 30
    book = sim.exchange.sm("BTCUSDT").book
    spec = sim.exchange.specs["BTCUSDT"]
    assert client.bids == {spec.price_str(t): spec.qty_str(n) for t, n in book.top_bids(depth)}
    assert client.asks == {spec.price_str(t): spec.qty_str(n) for t, n in book.top_asks(depth)}


async def test_a_reader_that_stalls_is_dropped_and_the_market_goes_on() -> None:
    async with (
        open_sim(SimConfig(seed=4, rate=20_000)) as sim,
        open_websocket_url(sim.ws_public_url, message_queue_size=0) as lazy,
    ):
        symbols = list(sim.exchange.specs)
        await send(lazy, {"op": "subscribe", "args": [f"orderbook.200.{s}" for s in symbols]})
        with trio.fail_after(20):
            # we never read: the backlog grows until we are dropped (polling real state)
            while any(not o.closed for o in sim.app.ws.live["public"]):  # noqa: ASYNC110
                await trio.sleep(0.1)
            seq = sim.exchange.market.seq
            while sim.exchange.market.seq == seq:  # noqa: ASYNC110 -- the market moves on
                await trio.sleep(0.05)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await lazy.get_message()
        assert closed.value.reason.code == 1013
        assert "slow consumer" in (closed.value.reason.reason or "")
