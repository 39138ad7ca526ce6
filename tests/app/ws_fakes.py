"""An in-memory Bybit WebSocket endpoint for the app's stream tasks, under MockClock.

``FakeWsServer.connect`` is the ``connect`` function ``scalper.bybit.ws.open_ws``
accepts. The server answers ping, auth and (un)subscribe like Bybit, records every op
a client sent, and lets the test push data frames or drop the connection. Frame
builders produce the documented wire shapes (see tests/fixtures/bybit).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from scalper.bybit.ws import WsLike, WsPolicy

#: heartbeats far apart: the tests drive the streams, not the pinger
POLICY = WsPolicy(ping_interval_s=20, pong_timeout_s=10, backoff_base_s=0.1, backoff_max_s=1)


class FakeWs:
    """One connection: what the client sent, and a queue of frames for it."""

    def __init__(self, server: FakeWsServer) -> None:
        self.server = server
        self._to_client, self._from_server = trio.open_memory_channel[str](1000)
        self.ops: list[tuple[str, list[Any]]] = []

    async def send_message(self, message: str) -> None:
        if self._to_client._closed:
            raise trio.ClosedResourceError("connection dropped")
        msg = json.loads(message)
        op = msg["op"]
        self.ops.append((op, list(msg.get("args", []))))
        self.server.ops.append((op, list(msg.get("args", []))))
        reply: dict[str, Any] = {"success": True, "ret_msg": "", "op": op, "conn_id": "c"}
        if op == "ping":
            reply["ret_msg"] = "pong"
            reply["req_id"] = msg.get("req_id")
        if op in ("ping", "auth", "subscribe"):
            self._to_client.send_nowait(json.dumps(reply))

    async def get_message(self) -> str:
        return await self._from_server.receive()  # EndOfChannel once dropped

    def push(self, frame: dict[str, Any] | str) -> None:
        self._to_client.send_nowait(frame if isinstance(frame, str) else json.dumps(frame))

    def drop(self) -> None:
        self._to_client.close()


class FakeWsServer:
    """Hands out ``FakeWs`` connections; ``ws`` is the latest one."""

    def __init__(self) -> None:
        self.conns: list[FakeWs] = []
        self.ops: list[tuple[str, list[Any]]] = []
        self.connected = trio.Event()

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[WsLike]:
        ws = FakeWs(self)
        self.conns.append(ws)
        self.connected.set()
        try:
            yield ws
        finally:
            ws.drop()

    @property
    def ws(self) -> FakeWs:
        return self.conns[-1]

    def data_ops(self) -> list[tuple[str, list[Any]]]:
        """Every subscribe/unsubscribe sent so far, in order (pings and auth left out)."""
        return [(op, args) for op, args in self.ops if op in ("subscribe", "unsubscribe")]


def book_frame(
    symbol: str,
    kind: str,
    u: int,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    ts: int = 1_700_000_000_000,
) -> dict[str, Any]:
    """An ``orderbook.50`` snapshot or delta."""
    return {
        "topic": f"orderbook.50.{symbol}",
        "type": kind,
        "ts": ts,
        "data": {
            "s": symbol,
            "b": [list(level) for level in bids],
            "a": [list(level) for level in asks],
            "u": u,
            "seq": u,
        },
        "cts": ts,
    }


def trade_frame(symbol: str, price: str, ts: int = 1_700_000_000_000) -> dict[str, Any]:
    """A ``publicTrade`` message with one trade."""
    return {
        "topic": f"publicTrade.{symbol}",
        "type": "snapshot",
        "ts": ts,
        "data": [
            {
                "T": ts,
                "s": symbol,
                "S": "Buy",
                "v": "1",
                "p": price,
                "L": "PlusTick",
                "i": f"t-{ts}",
                "BT": False,
                "seq": 1,
            }
        ],
    }


def order_frame(
    link_id: str,
    status: str,
    cum_exec_qty: str,
    *,
    updated_ms: int = 1_700_000_000_000,
    push_id: str = "p1",
) -> dict[str, Any]:
    """A private ``order`` push for one linear order of qty 1."""
    return {
        "id": push_id,
        "topic": "order",
        "creationTime": updated_ms,
        "data": [
            {
                "category": "linear",
                "symbol": "SOLUSDT",
                "orderId": f"id-{link_id}",
                "orderLinkId": link_id,
                "side": "Buy",
                "orderType": "Limit",
                "orderStatus": status,
                "qty": "1",
                "price": "100",
                "avgPrice": "100" if cum_exec_qty != "0" else "",
                "cumExecQty": cum_exec_qty,
                "leavesQty": "0" if status in ("Filled", "Cancelled") else "1",
                "rejectReason": "EC_NoError",
                "timeInForce": "PostOnly",
                "updatedTime": str(updated_ms),
                "createdTime": str(updated_ms),
            }
        ],
    }


def execution_frame(link_id: str, exec_id: str) -> dict[str, Any]:
    """A private ``execution`` push with one trade fill."""
    return {
        "id": f"x-{exec_id}",
        "topic": "execution",
        "creationTime": 1_700_000_000_000,
        "data": [
            {
                "category": "linear",
                "symbol": "SOLUSDT",
                "execId": exec_id,
                "orderId": f"id-{link_id}",
                "orderLinkId": link_id,
                "side": "Buy",
                "execPrice": "100",
                "execQty": "1",
                "execFee": "0.02",
                "execType": "Trade",
                "isMaker": True,
                "execTime": "1700000000000",
            }
        ],
    }
