"""The simulator's ASGI application: REST, both WebSockets and the control API, one port.

Raw ASGI (no framework): the WebSocket push path is the hot one, and a framework layer
per frame costs more than it gives. Routing:

* ``/v5/public/linear`` and ``/v5/private`` (WebSocket) -> ``ws.serve_ws``;
* ``/v5/...`` (HTTP) -> ``rest.RestApi`` with the pending REST faults applied (latency,
  HTTP status, forced retCode, or ``timeout``: the request is carried out and its reply
  held until the client gives up);
* ``GET /sim/state`` and ``POST /sim/faults`` -> the control API (JSON, no auth,
  loopback clients only; a bad request is a 400 with ``{"error": reason}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import trio
from loguru import logger

from .errors import VenueError
from .faults import FaultRegistry, RestFaults, parse_fault
from .rest import Reply, RestApi
from .venue import Exchange
from .ws import WsContext, serve_ws

__all__ = ["SimApp"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: how long a ``timeout`` fault holds a reply at most before answering 504
_HOLD_MAX_S = 300.0
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_JSON = (b"content-type", b"application/json")


class SimApp:
    """ASGI callable serving the simulated exchange."""

    def __init__(self, exchange: Exchange, *, api_key: str, idle_timeout_s: float) -> None:
        self.exchange = exchange
        self.api_key = api_key
        self.faults = FaultRegistry()
        self.rest = RestApi(exchange)
        self.ws = WsContext(exchange, self.faults, idle_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            path = scope["path"]
            if path == "/v5/public/linear":
                await serve_ws(self.ws, "public", receive, send)
            elif path == "/v5/private":
                await serve_ws(self.ws, "private", receive, send)
            else:
                await send({"type": "websocket.close", "code": 4004})
        elif kind == "lifespan":
            await _lifespan(receive, send)

    # --------------------------------------------------------------- control
    def inject(self, obj: Any) -> dict[str, Any]:
        """Apply one fault (see ``faults``); ValueError when the request is bad."""
        fault = parse_fault(obj, self.exchange.market.symbols)
        kind = fault.kind
        result: dict[str, Any] = {"kind": kind}
        if kind == "clear":
            self.faults.clear()
            self.exchange.public.malformed = 0
            self.exchange.public.out_of_order = 0
            self.exchange.private.drop = 0
        elif kind == "ws_disconnect":
            result["closed"] = self.ws.disconnect(fault.stream)
        elif kind == "ws_silence":
            self.faults.add_silence(fault, trio.current_time())
        elif kind == "malformed_ws":
            self.exchange.public.malformed += fault.count or 1
            self.exchange.public.malformed_variant = fault.variant
        elif kind == "out_of_order_ws":
            self.exchange.public.out_of_order += fault.count or 1
        elif kind == "drop_private_push":
            self.exchange.private.drop += fault.count or 1
        elif kind == "close_position":
            assert fault.symbol is not None
            result["closed"] = self.exchange.close_position(fault.symbol)
        elif kind == "price_jump":
            assert fault.symbol is not None
            self.exchange.price_jump(fault.symbol, fault.pct, wick=fault.wick)
        else:
            self.faults.add_rest(fault)
        logger.info("sim fault injected: {}", obj)
        return result

    def state(self) -> dict[str, Any]:
        """Positions, open orders, order history and wallet of the configured key."""
        return self.exchange.state(self.exchange.accounts[self.api_key])

    # ------------------------------------------------------------------ http
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/sim/"):
            await _respond(send, self._control(scope, method, path, body))
            return
        faults = self.faults.for_request(path) if path.startswith("/v5/") else RestFaults()
        if faults.latency_ms:
            await trio.sleep(faults.latency_ms / 1000)
        if faults.status:
            text = f"<html><body><h1>{faults.status} simulated</h1></body></html>".encode()
            await _respond(send, Reply(faults.status, text, ((b"content-type", b"text/html"),)))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        forced = (faults.code, faults.msg, faults.reset_ms) if faults.code else None
        reply = self.rest.handle(method, path, scope["query_string"], headers, body, forced)
        if faults.hold:
            with trio.move_on_after(_HOLD_MAX_S):
                while (await receive())["type"] != "http.disconnect":
                    pass
                return
            reply = Reply(504, b"")
        await _respond(send, reply)

    def _control(self, scope: Scope, method: str, path: str, body: bytes) -> Reply:
        client = scope.get("client")
        if client and client[0] not in _LOOPBACK:
            return _json(403, {"error": "the control API answers loopback clients only"})
        if path == "/sim/state" and method == "GET":
            return _json(200, self.state())
        if path == "/sim/faults" and method == "POST":
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError:
                return _json(400, {"error": "body is not valid JSON"})
            try:
                return _json(200, {"ok": True, **self.inject(obj)})
            except (ValueError, VenueError) as exc:
                return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no control endpoint {method} {path}"})


def _json(status: int, obj: Any) -> Reply:
    return Reply(status, orjson.dumps(obj))


async def _respond(send: Send, reply: Reply) -> None:
    headers = (
        [_JSON, *reply.headers]
        if not any(k == b"content-type" for k, _ in reply.headers)
        else list(reply.headers)
    )
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
