"""The two WebSocket endpoints (``/v5/public/linear``, ``/v5/private``) over raw ASGI.

Each connection runs two tasks: a reader that answers ops (subscribe, unsubscribe,
ping, auth) by putting replies on the connection's ``Outbox``, and a writer that drains
the outbox into ``websocket.send`` events. Publishers (market, venue) only ever touch
the outbox, synchronously. Closing is always done by the writer (after the queued
frames), so ``ws_disconnect``, an idle timeout and a slow consumer end the same way: a
close frame with a code, then the end of the ASGI call.

Replies follow Bybit's documented samples (subscribe acks with success/ret_msg/conn_id/
req_id/op, the public pong with ``op: "ping"`` and ``ret_msg: "pong"``, the private pong
with ``op: "pong"`` and ``args: [ms]``). Bad input (not JSON, not an object, unknown op,
unknown topic) gets ``success: false`` with a reason, never a dropped connection.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import attrs
import orjson
import trio
from loguru import logger

from ..bybit.auth import ws_auth_signature
from .faults import FaultRegistry
from .outbox import Outbox
from .private import PRIVATE_TOPICS, PrivateConn
from .public import parse_topic
from .venue import Exchange

__all__ = ["WsContext", "serve_ws"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: Bybit's cap on the text of one public subscribe request's args
_MAX_ARGS_CHARS = 21_000


class WsContext:
    """What every connection needs: the venue, the faults, the live connections."""

    def __init__(
        self,
        exchange: Exchange,
        faults: FaultRegistry,
        idle_timeout_s: float,
        now_s: Callable[[], float] = trio.current_time,
    ) -> None:
        self.exchange = exchange
        #: the clock the ping-silence fault is measured on (trio's, unless a test says)
        self.now_s = now_s
        self.faults = faults
        self.idle_timeout_s = idle_timeout_s
        self.live: dict[str, set[Outbox]] = {"public": set(), "private": set()}
        self._ids = itertools.count(1)
        self._seed = f"{exchange.market.rng.getrandbits(32):08x}"

    def conn_id(self) -> str:
        """A Bybit-looking connection id."""
        return f"{self._seed}-{next(self._ids):06d}"

    def backlog(self) -> int:
        """Frames queued on the most-behind public connection."""
        return max((len(o.queue) for o in self.live["public"]), default=0)

    def drop_slow(self, limit: int) -> int:
        """Close public connections with more than ``limit`` frames queued."""
        slow = [o for o in self.live["public"] if len(o.queue) > limit]
        for outbox in slow:
            outbox.queue.clear()  # they would never be read: close at once
            outbox.close(1013, f"slow consumer: more than {limit} messages queued")
        return len(slow)

    def disconnect(
        self, stream: str | None, reason: str = "simulated disconnect (ws_disconnect fault)"
    ) -> int:
        """Close every live connection of ``stream`` (both when None); return how many."""
        count = 0
        for name in (stream,) if stream else ("public", "private"):
            for outbox in list(self.live[name]):
                outbox.close(1001, reason)
                count += 1
        return count


def _dumps(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


@attrs.define(eq=False)
class _Session:
    """Common parsing of client frames."""

    stream: ClassVar[str] = ""

    ctx: WsContext
    outbox: Outbox
    conn_id: str

    def on_text(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._fail("", "", "error:request is not valid JSON")
            return
        if not isinstance(msg, dict):
            self._fail("", "", "error:request must be a JSON object")
            return
        req_id = msg.get("req_id")
        req_id = req_id if isinstance(req_id, str) else ("" if req_id is None else str(req_id))
        op = msg.get("op")
        if not isinstance(op, str):
            self._fail(req_id, "", "error:op is missing")
            return
        self.on_op(op, req_id, msg.get("args"))

    def on_op(self, op: str, req_id: str, args: Any) -> None:
        raise NotImplementedError

    def fail_internal(self) -> None:
        """Answer a frame the simulator failed on (a bug, logged by the caller)."""
        self._fail("", "", "error:internal error")

    def _fail(self, req_id: str, op: str, reason: str) -> None:
        self._ack(False, req_id, op, reason)

    def _ok(self, req_id: str, op: str, ret_msg: str = "") -> None:
        self._ack(True, req_id, op, ret_msg)

    def _ack(self, success: bool, req_id: str, op: str, ret_msg: str) -> None:
        """Bybit's answer to an op: success, the reason, the connection and request ids."""
        self.outbox.put(
            _dumps(
                {
                    "success": success,
                    "ret_msg": ret_msg,
                    "conn_id": self.conn_id,
                    "req_id": req_id,
                    "op": op,
                }
            )
        )

    def _topics(self, req_id: str, op: str, args: Any) -> list[str] | None:
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self._fail(req_id, op, "error:args must be a non-empty list of topic strings")
            return None
        return args

    def close(self) -> None:
        """Forget this connection everywhere."""


@attrs.define(eq=False)
class PublicSession(_Session):
    """``/v5/public/linear``: subscribe/unsubscribe to book, trade and ticker topics."""

    stream: ClassVar[str] = "public"

    topics: set[str] = attrs.field(factory=set, init=False)

    def on_op(self, op: str, req_id: str, args: Any) -> None:
        hub = self.ctx.exchange.public
        symbols = self.ctx.exchange.market.symbols
        if op == "ping":
            if not self.ctx.faults.swallow_ping("public", self.ctx.now_s()):
                self._ok(req_id, "ping", "pong")
            return
        if op not in ("subscribe", "unsubscribe"):
            self._fail(req_id, op, f"error:handler not found,op:{op}")
            return
        topics = self._topics(req_id, op, args)
        if topics is None:
            return
        if sum(len(t) for t in topics) > _MAX_ARGS_CHARS:
            self._fail(req_id, op, "error:args too long")
            return
        for topic in topics:
            if parse_topic(topic, symbols) is None:
                self._fail(req_id, op, f"error:handler not found,topic:{topic}")
                return
            if op == "subscribe" and topic in self.topics:
                self._fail(req_id, op, f"error:already subscribed,topic:{topic}")
                return
        self._ok(req_id, op)
        now = self.ctx.exchange.now_ms()
        for topic in topics:
            if op == "subscribe":
                self.topics.add(topic)
                hub.subscribe(self.outbox, topic, now)
            else:
                self.topics.discard(topic)
                hub.unsubscribe(self.outbox, topic)

    def close(self) -> None:
        self.ctx.exchange.public.drop(self.outbox)


@attrs.define(eq=False)
class PrivateSession(_Session):
    """``/v5/private``: auth, then order/execution/position/wallet topics."""

    stream: ClassVar[str] = "private"

    #: set once the connection authenticated
    conn: PrivateConn | None = attrs.field(default=None, init=False)

    def on_op(self, op: str, req_id: str, args: Any) -> None:
        if op == "ping":
            if not self.ctx.faults.swallow_ping("private", self.ctx.now_s()):
                now = self.ctx.exchange.now_ms()
                self.outbox.put(
                    _dumps(
                        {
                            "req_id": req_id,
                            "op": "pong",
                            "args": [str(now)],
                            "conn_id": self.conn_id,
                        }
                    )
                )
            return
        if op == "auth":
            self._auth(req_id, args)
            return
        if op not in ("subscribe", "unsubscribe"):
            self._fail(req_id, op, f"error:handler not found,op:{op}")
            return
        if self.conn is None:
            self._fail(req_id, op, "Request not authorized")
            return
        topics = self._topics(req_id, op, args)
        if topics is None:
            return
        for topic in topics:
            if topic not in PRIVATE_TOPICS:
                self._fail(req_id, op, f"error:handler not found,topic:{topic}")
                return
        for topic in topics:
            if op == "subscribe":
                self.conn.topics.add(topic)
            else:
                self.conn.topics.discard(topic)
        self._ok(req_id, op)

    def _auth(self, req_id: str, args: Any) -> None:
        if self.conn is not None:
            self._fail(req_id, "auth", "Repeat auth")
            return
        if not isinstance(args, list) or len(args) != 3:
            self._fail(req_id, "auth", "Params Error: args must be [api_key, expires, signature]")
            return
        key, expires, signature = args
        if isinstance(expires, str) and expires.isdigit():
            expires = int(expires)
        if (
            not isinstance(key, str)
            or not isinstance(signature, str)
            or isinstance(expires, bool)
            or not isinstance(expires, int)
        ):
            self._fail(req_id, "auth", "Params Error: wrong types in args")
            return
        account = self.ctx.exchange.accounts.get(key)
        if account is None:
            self._fail(req_id, "auth", "Invalid apikey")
            return
        if expires <= self.ctx.exchange.now_ms():
            self._fail(req_id, "auth", "Params Error: request expired")
            return
        expected = ws_auth_signature(account.api_secret, expires)
        if not hmac.compare_digest(expected, signature.lower()):
            self._fail(req_id, "auth", "Invalid sign")
            return
        self.conn = PrivateConn(key, self.outbox)
        self.ctx.exchange.private.add(self.conn)
        self._ok(req_id, "auth")

    def close(self) -> None:
        if self.conn is not None:
            self.ctx.exchange.private.remove(self.conn)


async def serve_ws(ctx: WsContext, stream: str, receive: Receive, send: Send) -> None:
    """Run one WebSocket connection of ``stream`` ("public" or "private") to its end."""
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    outbox = Outbox()
    conn_id = ctx.conn_id()
    session: _Session = (
        PublicSession(ctx, outbox, conn_id)
        if stream == "public"
        else PrivateSession(ctx, outbox, conn_id)
    )
    ctx.live[stream].add(outbox)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_writer, outbox, send, nursery.cancel_scope)
            await _reader(ctx, session, outbox, receive)
            nursery.cancel_scope.cancel()
    finally:
        outbox.closed = True
        ctx.live[stream].discard(outbox)
        session.close()


async def _reader(ctx: WsContext, session: _Session, outbox: Outbox, receive: Receive) -> None:
    while True:
        with trio.move_on_after(ctx.idle_timeout_s) as scope:
            event = await receive()
        if scope.cancelled_caught:  # idle: Bybit drops connections that send nothing
            outbox.close(1000, f"idle: no message from the client for {ctx.idle_timeout_s:g} s")
            await trio.sleep_forever()  # the writer sends the close frame and ends us
        kind = event["type"]
        if kind == "websocket.disconnect":
            return
        if kind != "websocket.receive":
            continue
        text = event.get("text")
        if text is None:
            data = event.get("bytes") or b""
            text = data.decode("utf-8", errors="replace")
        try:
            session.on_text(text)
        except Exception:  # noqa: BLE001 -- a simulator bug: log it, keep the connection
            logger.exception("sim: internal error on a {} ws frame", session.stream)
            session.fail_internal()


async def _writer(outbox: Outbox, send: Send, scope: trio.CancelScope) -> None:
    queue = outbox.queue
    while True:
        await outbox.wait()
        while queue:
            await send({"type": "websocket.send", "text": queue.popleft()})
        if outbox.closed:
            await send(
                {
                    "type": "websocket.close",
                    "code": outbox.close_code,
                    "reason": outbox.close_reason,
                }
            )
            scope.cancel()
            return
