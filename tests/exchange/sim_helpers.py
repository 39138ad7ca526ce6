"""Raw-client helpers for the simulator conformance tests.

Deliberately NOT our own Bybit client: requests are signed here by hand with hmac (the
reference's recipe), sent with plain httpx and trio-websocket, so the client and the
simulator cannot share a mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import trio
from trio_websocket import WebSocketConnection

KEY = "sim-key"
SECRET = "sim-secret"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bybit"


def sample(name: str) -> Any:
    """The documented response of one Bybit sample file."""
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def auth_headers(
    payload: str,
    *,
    key: str = KEY,
    secret: str = SECRET,
    ts: int | None = None,
    recv: int = 5000,
    sign: str | None = None,
) -> dict[str, str]:
    ts = now_ms() if ts is None else ts
    signature = sign if sign is not None else hmac_hex(secret, f"{ts}{key}{recv}{payload}")
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": str(ts),
        "X-BAPI-RECV-WINDOW": str(recv),
        "X-BAPI-SIGN": signature,
    }


async def get(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None, **auth: Any
) -> httpx.Response:
    """Signed GET; the query string is built once and sent as signed."""
    query = urlencode(params or {})
    url = f"{path}?{query}" if query else path
    return await client.get(url, headers=auth_headers(query, **auth))


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any] | str, **auth: Any
) -> httpx.Response:
    """Signed POST of the exact body bytes."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    headers = auth_headers(text, **auth)
    headers["Content-Type"] = "application/json"
    return await client.post(path, content=text.encode(), headers=headers)


async def send(ws: WebSocketConnection, msg: dict[str, Any]) -> None:
    await ws.send_message(orjson.dumps(msg).decode())


async def recv(ws: WebSocketConnection, limit_s: float = 5.0) -> Any:
    with trio.fail_after(limit_s):
        return orjson.loads(await ws.get_message())


async def recv_until(ws: WebSocketConnection, pred: Any, limit_s: float = 5.0) -> Any:
    """Skip messages until ``pred(msg)``; return that message."""
    with trio.fail_after(limit_s):
        while True:
            msg = orjson.loads(await ws.get_message())
            if pred(msg):
                return msg


async def quiesce(sim: Any, ws: WebSocketConnection, limit_s: float = 5.0) -> list[Any]:
    """Stop the market and read every frame it queued for ``ws`` so far; return them.

    The market publishes from its own task, so frames are always in flight between the
    simulator's outbox and this client: "the next frame" after an action may have been
    queued before it. Paused, the market queues nothing new, and the pong to a ping is
    queued behind everything already queued, so once it is read the client has seen
    every frame sent to it. The next market frame is then one the market makes after
    ``sim.exchange.paused = False``.
    """
    sim.exchange.paused = True
    await send(ws, {"req_id": "quiesce", "op": "ping"})
    seen = []
    with trio.fail_after(limit_s):
        while True:
            msg = orjson.loads(await ws.get_message())
            if msg.get("req_id") == "quiesce":
                return seen
            seen.append(msg)


async def private_auth(ws: WebSocketConnection, key: str = KEY, secret: str = SECRET) -> Any:
    expires = now_ms() + 10_000
    await send(
        ws,
        {
            "req_id": "a1",
            "op": "auth",
            "args": [key, expires, hmac_hex(secret, f"GET/realtime{expires}")],
        },
    )
    return await recv(ws)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


#: keys whose content is free-form (keyed by coin) in the samples
_OPAQUE = {"cumFeeDetail", "retExtInfo", "preListingInfo"}


def assert_shape(expected: Any, actual: Any, where: str = "$") -> None:
    """Every key of the Bybit sample is present in ``actual`` with the same JSON type."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing field {key!r}"
            if key in _OPAQUE:
                continue
            assert_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        if expected and actual:
            assert_shape(expected[0], actual[0], f"{where}[0]")
    else:
        assert json_type(expected) == json_type(actual), (
            f"{where}: sample has {json_type(expected)} {expected!r}, sim sent "
            f"{json_type(actual)} {actual!r}"
        )
