"""WsConnection against an in-memory scripted Bybit endpoint, under MockClock.

The injected ``connect`` hands out FakeWs objects; the "server" answers pings, auth
and subscribe ops like Bybit, and can drop a connection, go silent, refuse connects
or refuse auth. Heartbeat, pong deadline and backoff timings are virtual time.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from scalper.bybit.auth import Credentials, ws_auth_signature
from scalper.bybit.errors import StreamAuthError, StreamError
from scalper.bybit.ws import (
    Connected,
    Disconnected,
    WsConnection,
    WsLike,
    WsOptions,
    WsPolicy,
    open_ws,
)

KEY, SECRET = "ws-key", "ws-secret"
POLICY = WsPolicy(
    ping_interval_s=20,
    pong_timeout_s=10,
    auth_timeout_s=5,
    backoff_base_s=0.5,
    backoff_max_s=8,
    healthy_after_s=60,
)


class FakeWs:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.to_client, self._from_server = trio.open_memory_channel[str](100)
        self.sent: list[dict[str, Any]] = []
        self.topics: list[str] = []
        self.authed = False

    async def send_message(self, message: str) -> None:
        if self.to_client._closed:  # dropped: writing fails like a closed socket
            raise trio.ClosedResourceError("closed")
        msg = json.loads(message)
        self.sent.append(msg)
        op = msg["op"]
        if op == "ping":
            self.server.pings.append(trio.current_time())
            if self.server.answer_pings:
                reply = {
                    "success": True,
                    "ret_msg": "pong",
                    "conn_id": "c",
                    "req_id": msg["req_id"],
                    "op": "ping",
                }
                self.to_client.send_nowait(json.dumps(reply))
        elif op == "auth":
            key, expires, sig = msg["args"]
            ok = (
                self.server.auth_ok
                and key == KEY
                and sig == ws_auth_signature(SECRET, expires)
                and expires > self.server.now_ms()
            )
            self.authed = ok
            self.to_client.send_nowait(
                json.dumps(
                    {
                        "success": ok,
                        "ret_msg": "" if ok else "bad sig",
                        "op": "auth",
                        "conn_id": "c",
                    }
                )
            )
        elif op == "subscribe":
            if self.server.private and not self.authed:
                self.server.subscribed_before_auth = True
            if self.server.refuse_subscribes > 0:
                self.server.refuse_subscribes -= 1
                reply = {"success": False, "ret_msg": "service busy", "op": "subscribe"}
                self.to_client.send_nowait(json.dumps(reply))
                return
            self.topics.extend(msg["args"])
            self.to_client.send_nowait(
                json.dumps({"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "c"})
            )
        elif op == "unsubscribe":
            self.topics = [t for t in self.topics if t not in msg["args"]]

    async def get_message(self) -> str:
        return await self._from_server.receive()  # EndOfChannel once dropped

    def push(self, frame: dict[str, Any] | str) -> None:
        self.to_client.send_nowait(frame if isinstance(frame, str) else json.dumps(frame))

    def drop(self) -> None:
        self.to_client.close()


class FakeServer:
    #: the connections it hands out (a subclass may expose more of them)
    ws_kind: type[FakeWs] = FakeWs

    def __init__(self, *, private: bool = False) -> None:
        self.private = private
        self.conns: list[FakeWs] = []
        self.connect_times: list[float] = []
        self.pings: list[float] = []
        self.answer_pings = True
        self.auth_ok = True
        self.refuse = 0
        self.refuse_subscribes = 0
        self.subscribed_before_auth = False

    @staticmethod
    def now_ms() -> int:
        return 1_700_000_000_000 + int(trio.current_time() * 1000)

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[WsLike]:
        self.connect_times.append(trio.current_time())
        if self.refuse > 0:
            self.refuse -= 1
            raise OSError("connection refused")
        ws = self.ws_kind(self)
        self.conns.append(ws)
        try:
            yield ws
        finally:
            ws.drop()

    @property
    def ws(self) -> FakeWs:
        return self.conns[-1]


def conn_for(server: FakeServer, **kw: Any) -> Any:
    options = WsOptions(
        connect=server.connect,
        policy=kw.pop("policy", POLICY),
        rng=random.Random(3),
        clock_ms=server.now_ms,
        **kw,
    )
    return open_ws("wss://fake/v5/public/linear", options)


async def next_item(conn: WsConnection) -> Any:
    with trio.fail_after(300):
        return await conn.__anext__()


BOOK = {
    "topic": "orderbook.50.X",
    "type": "snapshot",
    "ts": 1,
    "data": {"s": "X", "b": [], "a": [], "u": 1},
}


async def test_first_connect_subscribes_and_forwards_data_frames_only(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server, topics=["orderbook.50.X"]) as conn:
        assert await next_item(conn) == Connected("public", reconnect=False, count=1)
        assert server.ws.topics == ["orderbook.50.X"]
        await conn.subscribe(["publicTrade.X", "orderbook.50.X"])
        assert server.ws.topics == ["orderbook.50.X", "publicTrade.X"]
        server.ws.push({"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "c"})
        server.ws.push(BOOK)
        assert json.loads(await next_item(conn)) == BOOK  # acks never reach the caller


async def test_drop_reconnects_and_resubscribes_everything(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server, topics=["orderbook.50.X"]) as conn:
        await next_item(conn)
        await conn.subscribe(["publicTrade.X"])
        await conn.unsubscribe(["orderbook.50.X"])
        await conn.subscribe(["orderbook.50.Y"])
        server.ws.drop()
        gone = await next_item(conn)
        assert isinstance(gone, Disconnected) and gone.reason.startswith("EndOfChannel")
        back = await next_item(conn)
        assert back == Connected("public", reconnect=True, count=2)
        assert len(server.conns) == 2
        assert server.ws.topics == ["publicTrade.X", "orderbook.50.Y"]
        server.ws.push(BOOK)
        assert json.loads(await next_item(conn)) == BOOK
        assert conn.drops == 1


async def test_refused_subscribe_drops_the_connection_and_resubscribes(
    autojump_clock: Any,
) -> None:
    # A topic refused on a live connection would otherwise stay dead with no event for
    # the caller (a book that never repairs): the connection starts over instead.
    server = FakeServer()
    async with conn_for(server, topics=["orderbook.50.X"]) as conn:
        await next_item(conn)
        server.refuse_subscribes = 1
        await conn.subscribe(["publicTrade.X"])
        gone = await next_item(conn)
        assert isinstance(gone, Disconnected)
        assert gone.reason.startswith("subscribe refused: service busy")
        back = await next_item(conn)
        assert back == Connected("public", reconnect=True, count=2)
        assert server.ws.topics == ["orderbook.50.X", "publicTrade.X"]


async def test_ping_every_interval(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server) as conn:
        await next_item(conn)
        start = trio.current_time()
        await trio.sleep(65)
        assert [round(t - start) for t in server.pings] == [20, 40, 60]
        assert all(m["req_id"] for m in server.ws.sent if m["op"] == "ping")
        assert conn.drops == 0


async def test_silence_fires_pong_deadline_and_reconnects(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server) as conn:
        await next_item(conn)
        t0 = trio.current_time()
        server.answer_pings = False
        gone = await next_item(conn)
        assert isinstance(gone, Disconnected) and "no pong" in gone.reason
        assert trio.current_time() - t0 == pytest.approx(30)  # ping at 20 s + 10 s deadline
        server.answer_pings = True
        assert (await next_item(conn)).reconnect is True


async def test_reconnect_backoff_grows_bounded_and_resets(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server) as conn:
        await next_item(conn)
        server.refuse = 6
        server.ws.drop()
        assert isinstance(await next_item(conn), Disconnected)
        assert (await next_item(conn)).count == 2
        t = server.connect_times
        gaps = [b - a for a, b in itertools.pairwise(t[1:])]
        # attempts after the drop: 0.5*2^k s (k = 0.. capped at 8 s), jittered to [50%, 100%]
        nominal = [min(8.0, 0.5 * 2**k) for k in range(1, 7)]
        assert len(gaps) == 6
        for gap, nom in zip(gaps, nominal, strict=True):
            assert nom / 2 <= gap <= nom
        # a connection that stays up past healthy_after_s resets the backoff
        await trio.sleep(61)
        server.ws.drop()
        await next_item(conn)
        before = trio.current_time()
        await next_item(conn)
        assert trio.current_time() - before <= 0.5


async def test_gives_up_after_max_failures(autojump_clock: Any) -> None:
    server = FakeServer()
    policy = WsPolicy(backoff_base_s=0.1, max_failures=3)
    async with conn_for(server, policy=policy) as conn:
        await next_item(conn)
        server.refuse = 100
        server.ws.drop()
        assert isinstance(await next_item(conn), Disconnected)
        with pytest.raises(StreamError, match="3 connections failed"):
            await next_item(conn)


async def test_private_auth_before_subscribe_and_after_every_reconnect(autojump_clock: Any) -> None:
    server = FakeServer(private=True)
    async with conn_for(
        server, credentials=Credentials(KEY, SECRET), topics=["order", "execution"]
    ) as conn:
        first = await next_item(conn)
        assert first == Connected("private", reconnect=False, count=1)
        ops = [m["op"] for m in server.ws.sent]
        assert ops == ["auth", "subscribe"]
        expires = server.ws.sent[0]["args"][1]
        assert 0 < expires - server.now_ms() <= 5000
        server.ws.drop()
        await next_item(conn)
        await next_item(conn)
        assert [m["op"] for m in server.ws.sent] == ["auth", "subscribe"]
        assert server.ws.topics == ["order", "execution"]
    assert not server.subscribed_before_auth


async def test_refused_auth_is_retried_a_little_then_fatal(autojump_clock: Any) -> None:
    server = FakeServer(private=True)
    server.auth_ok = False
    async with conn_for(server, credentials=Credentials(KEY, SECRET)) as conn:
        with pytest.raises(StreamAuthError, match="bad sig"):
            await next_item(conn)
    assert len(server.conns) == POLICY.max_auth_failures == 3
    assert not any(m["op"] == "subscribe" for c in server.conns for m in c.sent)


async def test_auth_refused_once_then_accepted_recovers(autojump_clock: Any) -> None:
    server = FakeServer(private=True)
    server.auth_ok = False

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[WsLike]:
        async with server.connect(url) as ws:
            server.auth_ok = len(server.conns) >= 2  # e.g. the clock was re-synced
            yield ws

    async with open_ws(
        "x",
        WsOptions(
            connect=connect,
            credentials=Credentials(KEY, SECRET),
            policy=POLICY,
            clock_ms=server.now_ms,
        ),
    ) as conn:
        assert await next_item(conn) == Connected("private", reconnect=False, count=1)
    assert len(server.conns) == 2


async def test_no_auth_reply_is_a_drop(autojump_clock: Any) -> None:
    server = FakeServer(private=True)

    class Mute(FakeWs):
        async def send_message(self, message: str) -> None:
            if json.loads(message)["op"] == "auth" and len(server.conns) == 1:
                return  # swallowed: no reply
            await super().send_message(message)

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[WsLike]:
        ws = Mute(server)
        server.conns.append(ws)
        yield ws

    async with open_ws(
        "x",
        WsOptions(
            connect=connect,
            credentials=Credentials(KEY, SECRET),
            policy=POLICY,
            clock_ms=server.now_ms,
        ),
    ) as conn:
        # open_ws returned: the second connection authenticated
        assert len(server.conns) == 2
        assert await next_item(conn) == Connected("private", reconnect=False, count=1)


async def test_malformed_control_frames_are_counted_and_skipped(autojump_clock: Any) -> None:
    server = FakeServer()
    async with conn_for(server) as conn:
        await next_item(conn)
        server.ws.push("{not json")
        server.ws.push('{"op": "unsubscribe", "success": false, "ret_msg": "bad topic"}')
        server.ws.push(BOOK)
        assert json.loads(await next_item(conn)) == BOOK
        assert conn.control_stats.counts["malformed_json"] == 1


async def test_first_connection_gives_up_naming_the_url(autojump_clock: Any) -> None:
    # A wrong URL must not hang the bot forever: after max_initial_failures attempts the
    # stream fails, naming the URL (without userinfo or query, which could hold secrets).
    server = FakeServer()
    server.refuse = 1000
    policy = WsPolicy(backoff_base_s=0.5, max_initial_failures=4)
    start = trio.current_time()
    async with open_ws(
        "wss://user:pw@wrong.example/v5/private?token=s3cret",
        WsOptions(connect=server.connect, policy=policy, rng=random.Random(3)),
    ) as conn:
        with pytest.raises(StreamError) as info:
            await next_item(conn)
    text = str(info.value)
    assert "wss://wrong.example/v5/private" in text and "4" in text
    assert "s3cret" not in text and "pw" not in text
    assert len(server.connect_times) == 4
    assert trio.current_time() - start < 60


async def test_reconnects_after_a_first_success_retry_past_the_initial_limit(
    autojump_clock: Any,
) -> None:
    server = FakeServer()
    async with conn_for(server, policy=WsPolicy(max_initial_failures=2)) as conn:
        await next_item(conn)
        server.refuse = 10
        server.ws.drop()
        assert isinstance(await next_item(conn), Disconnected)
        again = await next_item(conn)
        assert isinstance(again, Connected) and again.reconnect
    assert len(server.connect_times) == 12


async def test_refused_auths_below_their_limit_end_as_a_first_connection_failure(
    autojump_clock: Any,
) -> None:
    # Two refusals reach max_initial_failures before max_auth_failures (3): the stream
    # never connected, and says so (naming the URL) rather than as an auth error.
    server = FakeServer(private=True)
    server.auth_ok = False
    policy = attrs.evolve(POLICY, max_initial_failures=2)
    async with conn_for(server, policy=policy, credentials=Credentials(KEY, SECRET)) as conn:
        with pytest.raises(StreamError, match="could not connect") as info:
            await next_item(conn)
    assert not isinstance(info.value, StreamAuthError)
    assert "2 attempts failed" in str(info.value) and "bad sig" in str(info.value)
    assert len(server.conns) == 2
