"""A self-healing Bybit WebSocket connection (public or private), on trio-websocket.

Use::

    async with open_ws(url, credentials=creds) as conn:   # returns once connected
        await conn.subscribe(["order", "execution"])
        async for item in conn:
            if isinstance(item, Connected): ...      # (re)connected: resync state
            elif isinstance(item, Disconnected): ...  # dropped: data may be missing
            else: ...                                  # a raw data frame (str/bytes)

What it does for you:

* Heartbeat: ``{"op":"ping","req_id":n}`` every ``ping_interval_s`` (Bybit: 20 s). If no
  pong arrives within ``pong_timeout_s``, the connection counts as dead and is replaced.
* Reconnect: on any drop (close, reset, handshake failure, pong timeout) it reconnects
  with exponential backoff and jitter (``backoff_base_s`` doubling up to
  ``backoff_max_s``, times U(0.5, 1)); the backoff resets once a connection has stayed
  up for ``healthy_after_s``. Before the first connection succeeds,
  ``max_initial_failures`` failed attempts (default 5) end the stream with a
  ``StreamError`` naming the URL (a wrong URL fails fast instead of hanging); after a
  first success, ``max_failures`` consecutive failed attempts end it (default None:
  retry forever).
* Private streams authenticate first (``expires`` = now + ``auth_expires_s``), and only
  after Bybit confirms the auth are topics subscribed. A refused auth is retried with
  the same backoff (an ``expires`` off by clock skew can heal), but
  ``max_auth_failures`` refusals in a row end the stream with ``StreamAuthError``:
  hammering Bybit with a bad key only gets the IP banned.
* Every topic subscribed is remembered and re-subscribed after each reconnect.
* The caller sees a ``Disconnected(reason)`` marker when a connection is lost and a
  ``Connected(reconnect=True)`` marker when the next one is ready, so it can drop and
  rebuild whatever state it derived from the stream (books, order state).

Control replies (pong, subscribe/auth acks) are consumed here; only data frames reach
the caller, as raw text, so the market-data hot path parses each frame once.

Tests inject ``connect`` (a function ``url -> async context manager`` yielding anything
with ``send_message``/``get_message``) and run under MockClock.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs
import orjson
import trio
import trio_websocket
from loguru import logger

from .auth import Credentials, redact, wall_clock_ms, ws_auth_signature
from .backoff import backoff_delay
from .errors import StreamAuthError, StreamError
from .parse import ControlMessage, ParseStats, parse_message

__all__ = [
    "Connected",
    "Disconnected",
    "FrameSink",
    "WsConnection",
    "WsLike",
    "WsPolicy",
    "default_connect",
    "open_ws",
    "safe_url",
]


class FrameSink(Protocol):
    """Takes data frames in the reader's own task (see ``WsConnection.deliver_to``)."""

    def frame(self, raw: str | bytes) -> None:
        """One data frame, as received. Must not block: it runs in the socket reader."""
        ...

    def dropped(self, reason: str) -> None:
        """The connection was lost (called before the ``Disconnected`` marker is queued)."""
        ...


class WsLike(Protocol):
    """The part of ``trio_websocket.WebSocketConnection`` we use."""

    async def send_message(self, message: str) -> None:
        """Send one text frame."""
        ...

    async def get_message(self) -> str | bytes:
        """Receive one frame (raises when the connection is closed)."""
        ...


ConnectFn = Callable[[str], AbstractAsyncContextManager[WsLike]]

#: What ends a connection (and starts a reconnect) rather than the program.
_DROPS: tuple[type[BaseException], ...] = (
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.EndOfChannel,
    OSError,
)


def safe_url(url: str) -> str:
    """``url`` without userinfo, query or fragment: fit for a log line or an error."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def default_connect(policy: WsPolicy) -> ConnectFn:
    """The real connector: ``trio_websocket.open_websocket_url`` with our timeouts."""

    def connect(url: str) -> AbstractAsyncContextManager[WsLike]:
        cm: AbstractAsyncContextManager[WsLike] = trio_websocket.open_websocket_url(
            url,
            connect_timeout=policy.connect_timeout_s,
            disconnect_timeout=policy.disconnect_timeout_s,
            max_message_size=4 * 1024 * 1024,
            message_queue_size=policy.message_queue_size,
            receive_buffer_size=policy.receive_buffer_size,
        )
        return cm

    return connect


@attrs.frozen(kw_only=True)
class WsPolicy:
    """Timing of one WebSocket connection (all seconds)."""

    ping_interval_s: float = 20.0
    pong_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    auth_expires_s: float = 5.0
    connect_timeout_s: float = 10.0
    disconnect_timeout_s: float = 2.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_after_s: float = 60.0
    #: consecutive failed connection attempts before giving up, once a connection has
    #: succeeded (None: never give up -- a live bot rides out an exchange outage)
    max_failures: int | None = None
    #: failed attempts before the *first* connection gives up (None: never). A URL
    #: that never worked is most likely wrong: fail and say so instead of hanging.
    max_initial_failures: int | None = 5
    #: consecutive refused auths before giving up (a bad key does not heal)
    max_auth_failures: int = 3
    #: frames buffered for a slow consumer before the reader waits
    queue_size: int = 1000
    #: trio-websocket's own queue of parsed messages, and the bytes it reads per call:
    #: with room for a whole read's worth of frames, the reader can take them as a
    #: burst (see ``WsConnection._reader``) instead of one task switch per frame
    message_queue_size: int = 256
    receive_buffer_size: int = 64 * 1024
    #: frames handed to a sink in one burst before the reader yields to other tasks
    burst: int = 64


@attrs.frozen
class Connected:
    """A connection is ready (authenticated, subscriptions sent)."""

    name: str
    #: False for the first connection, True after a drop: rebuild derived state
    reconnect: bool
    #: how many connections this stream has had, this one included
    count: int


@attrs.frozen
class Disconnected:
    """The connection was lost; data may be missing until the next ``Connected``."""

    name: str
    reason: str


Item = str | bytes | Connected | Disconnected


class _Dropped(Exception):
    """Internal: this connection is finished (reason in the message)."""


_DROPPED: tuple[type[BaseException], ...] = (_Dropped, *_DROPS)


class WsConnection:
    """One logical Bybit stream that survives drops. Iterate it for frames and markers.

    Build it with ``open_ws``; ``run`` is the connection loop that ``open_ws`` starts.
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        connect: ConnectFn | None = None,
        policy: WsPolicy = WsPolicy(),  # frozen: sharing is safe
        clock_ms: Callable[[], float] = wall_clock_ms,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        self.url = url
        self.policy = policy
        self.name = name or ("private" if credentials else "public")
        self._creds = credentials
        self._connect = connect or default_connect(policy)
        self._clock_ms = clock_ms
        self._rng = rng or random.Random()
        self._topics: dict[str, None] = {}  # ordered set
        self._ws: WsLike | None = None
        self._send_lock = trio.Lock()
        self._req_ids = itertools.count(1)
        self._pong = trio.Event()
        self._auth_reply: ControlMessage | None = None
        self._auth_event = trio.Event()
        self._error: BaseException | None = None
        self._send_items, self._items = trio.open_memory_channel[Item](policy.queue_size)
        #: unusable frames without a topic (broken control replies), counted
        self.control_stats = ParseStats(name=f"{self.name}-control")
        #: connections made so far
        self.connections = 0
        #: drops so far, and why the last one happened
        self.drops = 0
        self.last_drop_reason: str | None = None
        self._last_ready = 0.0
        self._drop_reason = "closed"
        #: called once, when the first connection is ready (``open_ws`` waits on it)
        self._started_hook: Callable[[], None] | None = None
        self._sink: FrameSink | None = None

    def __repr__(self) -> str:
        return f"WsConnection({self.name}, {safe_url(self.url)!r}, topics={list(self._topics)})"

    @property
    def topics(self) -> list[str]:
        """Topics currently subscribed (and re-subscribed after every reconnect)."""
        return list(self._topics)

    # ------------------------------------------------------------ caller API

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe now if connected; in any case after every reconnect."""
        new = [t for t in topics if t not in self._topics]
        for t in new:
            self._topics[t] = None
        if new:
            await self._send_op("subscribe", new)

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Stop receiving ``topics`` (and forget them for reconnects)."""
        gone = [t for t in topics if t in self._topics]
        for t in gone:
            del self._topics[t]
        if gone:
            await self._send_op("unsubscribe", gone)

    async def resubscribe(self, topics: Iterable[str]) -> None:
        """Unsubscribe and subscribe again: Bybit answers with a fresh snapshot."""
        topics = list(topics)
        await self.unsubscribe(topics)
        await self.subscribe(topics)

    def deliver_to(self, sink: FrameSink | None) -> None:
        """Hand data frames to ``sink.frame`` in the reader task instead of the queue.

        Why: the queue is a channel hop (a task switch and a wake-up per frame) between
        the socket and whoever parses the frame. The market-data path decodes and applies
        a frame in less time than that hop costs, so it does so right in the reader, and
        its one hop is the coalescing feed to the strategy. Markers (``Connected``,
        ``Disconnected``) still come through iteration; ``sink.dropped`` is called first,
        synchronously, so no frame of the next connection can meet state of the old one.
        """
        self._sink = sink

    def __aiter__(self) -> WsConnection:
        return self

    async def __anext__(self) -> Item:
        try:
            return await self._items.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None

    # ------------------------------------------------------------ connection loop

    async def run(self) -> None:
        """Connect, serve, reconnect, until cancelled or a fatal error.

        A fatal error (auth refused, ``max_failures`` reached) ends the iteration: the
        caller's ``async for`` raises it.
        """
        failures = 0
        auth_failures = 0
        log = logger.bind(stream=self.name)
        async with self._send_items:
            while self._error is None:
                before = self.connections
                reason = "closed"
                try:
                    async with self._connect(self.url) as ws:
                        reason = await self._session(ws)
                except* StreamAuthError as group:
                    auth_failures += 1
                    reason = str(group.exceptions[0])
                    if auth_failures >= self.policy.max_auth_failures:
                        self._error = group.exceptions[0]
                except* _DROPS as group:
                    exc = group.exceptions[0]
                    reason = f"{type(exc).__name__}: {exc}"[:300]
                finally:
                    self._ws = None
                ready = self.connections > before
                if ready:
                    auth_failures = 0
                    self.drops += 1
                    self.last_drop_reason = reason
                    if self._sink is not None:
                        self._sink.dropped(reason)
                    await self._send_items.send(Disconnected(self.name, reason))
                lived = trio.current_time() - self._last_ready
                healthy = ready and lived >= self.policy.healthy_after_s
                failures = 0 if healthy else failures + 1
                never = self.connections == 0
                limit = self.policy.max_initial_failures if never else self.policy.max_failures
                if self._error is None and limit is not None and failures >= limit:
                    if never:
                        self._error = StreamError(
                            f"{self.name} stream: could not connect to {safe_url(self.url)} "
                            f"({failures} attempts failed); last: {reason}"
                        )
                    else:
                        self._error = StreamError(
                            f"{self.name} stream: {failures} connections failed in a row; "
                            f"last: {reason}"
                        )
                if self._error is not None:
                    log.error("{} stream stopped: {}", self.name, self._error)
                    return
                p = self.policy
                delay = backoff_delay(failures, p.backoff_base_s, p.backoff_max_s, self._rng)
                log.warning(
                    "{} stream dropped ({}); reconnecting in {:.2f}s", self.name, reason, delay
                )
                await trio.sleep(delay)

    async def _session(self, ws: WsLike) -> str:
        """Serve one connection until it drops; returns why it dropped."""
        self._drop_reason = "closed"
        fatal: StreamAuthError | None = None
        async with trio.open_nursery() as nursery:
            scope = nursery.cancel_scope
            # The reader starts first: someone has to read the auth reply.
            nursery.start_soon(self._guarded, self._reader, ws, scope)
            try:
                if self._creds is not None:
                    await self._authenticate(ws)
                self._ws = ws
                await self._send_op("subscribe", list(self._topics))
            except StreamAuthError as exc:
                fatal = exc
                scope.cancel()
            except _DROPPED as exc:
                self._drop(exc, scope)
            else:
                self.connections += 1
                self._last_ready = trio.current_time()
                logger.bind(stream=self.name).info(
                    "{} stream connected (#{}), {} topic(s)",
                    self.name,
                    self.connections,
                    len(self._topics),
                )
                await self._send_items.send(
                    Connected(self.name, reconnect=self.connections > 1, count=self.connections)
                )
                nursery.start_soon(self._guarded, self._pinger, ws, scope)
                hook, self._started_hook = self._started_hook, None
                if hook is not None:
                    hook()
        if fatal is not None:
            raise fatal
        return self._drop_reason

    def _drop(self, exc: BaseException, scope: trio.CancelScope) -> None:
        if isinstance(exc, _Dropped):
            self._drop_reason = str(exc)
        else:
            self._drop_reason = f"{type(exc).__name__}: {exc}"[:300]
        scope.cancel()

    async def _guarded(
        self,
        fn: Callable[[WsLike], Awaitable[None]],
        ws: WsLike,
        scope: trio.CancelScope,
    ) -> None:
        """Run the reader or pinger; a drop ends the whole session, not the program."""
        try:
            await fn(ws)
        except _DROPPED as exc:
            self._drop(exc, scope)

    async def _authenticate(self, ws: WsLike) -> None:
        creds = self._creds
        assert creds is not None
        expires = int(self._clock_ms() + self.policy.auth_expires_s * 1000)
        self._auth_event = trio.Event()
        self._auth_reply = None
        msg = {
            "req_id": f"auth-{next(self._req_ids)}",
            "op": "auth",
            "args": [creds.api_key, expires, ws_auth_signature(creds.api_secret, expires)],
        }
        async with self._send_lock:
            await ws.send_message(orjson.dumps(msg).decode())
        with trio.move_on_after(self.policy.auth_timeout_s):
            await self._auth_event.wait()
        reply = self._received_auth_reply()
        if reply is None:
            raise _Dropped(f"no auth reply in {self.policy.auth_timeout_s}s")
        if reply.success is not True:
            text = redact(reply.ret_msg, creds.api_key, creds.api_secret)
            raise StreamAuthError(f"{self.name} stream auth refused: {text[:200]}")

    def _redact(self, text: str) -> str:
        creds = self._creds
        return redact(text) if creds is None else redact(text, creds.api_key, creds.api_secret)

    def _received_auth_reply(self) -> ControlMessage | None:
        return self._auth_reply

    async def _reader(self, ws: WsLike) -> None:
        send = self._send_items.send
        # Frames trio-websocket has already parsed can be taken without a checkpoint
        # each: a burst of them reaches the sink back to back, so the market data
        # coalesces (latest book wins) instead of waking the strategy once per frame.
        # Its queue is private API, so this is only used where it is present.
        queued = getattr(getattr(ws, "_recv_channel", None), "receive_nowait", None)
        burst = self.policy.burst
        while True:
            frame = await ws.get_message()
            taken = 0
            while True:
                # Data frames carry "topic"; control replies (pong, acks) never do.
                is_data = b'"topic"' in frame if type(frame) is bytes else '"topic"' in frame
                if is_data:
                    sink = self._sink
                    if sink is None:
                        await send(frame)
                    else:
                        sink.frame(frame)  # get_message() above was this loop's checkpoint
                else:
                    self._control(frame)
                taken += 1
                if queued is None or taken >= burst or self._sink is None:
                    break
                try:
                    frame = queued()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break  # nothing more now; a closed connection raises in get_message

    def _control(self, frame: str | bytes) -> None:
        msg = parse_message(frame, self.control_stats)
        if not isinstance(msg, ControlMessage):
            return  # counted (and logged, rate-limited) by the parser
        if msg.is_pong:
            self._pong.set()
        elif msg.op == "auth":
            self._auth_reply = msg
            self._auth_event.set()
        elif msg.success is False:
            reason = self._redact(msg.ret_msg)[:200]
            logger.bind(stream=self.name).warning(
                "{} stream: {} refused: {}", self.name, msg.op, reason
            )
            if msg.op == "subscribe":
                # A topic we need is dead on this connection and nothing would revive it
                # (the caller already saw Connected): start over, with backoff, and the
                # new connection subscribes everything again.
                raise _Dropped(f"subscribe refused: {reason}")

    async def _pinger(self, ws: WsLike) -> None:
        p = self.policy
        while True:
            await trio.sleep(p.ping_interval_s)
            self._pong = trio.Event()
            async with self._send_lock:
                await ws.send_message(f'{{"req_id":"{next(self._req_ids)}","op":"ping"}}')
            with trio.move_on_after(p.pong_timeout_s):
                await self._pong.wait()
            if not self._pong.is_set():
                raise _Dropped(f"no pong within {p.pong_timeout_s}s")

    async def _send_op(self, op: str, topics: list[str]) -> None:
        """Send (un)subscribe ops in chunks of 10 topics; a dead socket is ignored
        (the reader notices the drop, and the topics are re-sent on reconnect)."""
        ws = self._ws
        if ws is None or not topics:
            return
        for i in range(0, len(topics), 10):
            msg = {"req_id": f"{op}-{next(self._req_ids)}", "op": op, "args": topics[i : i + 10]}
            try:
                async with self._send_lock:
                    await ws.send_message(orjson.dumps(msg).decode())
            except _DROPS as exc:
                logger.bind(stream=self.name).debug("{} not sent ({}): drop pending", op, exc)
                return


@asynccontextmanager
async def open_ws(
    url: str,
    *,
    credentials: Credentials | None = None,
    connect: ConnectFn | None = None,
    policy: WsPolicy = WsPolicy(),  # frozen: sharing is safe
    clock_ms: Callable[[], float] = wall_clock_ms,
    rng: random.Random | None = None,
    name: str | None = None,
    topics: Iterable[str] = (),
) -> AsyncIterator[WsConnection]:
    """Run a ``WsConnection`` for the duration of the block; returns once connected.

    ``topics`` are subscribed on the first connection (and every later one). Leaving
    the block closes the connection.
    """
    conn = WsConnection(
        url,
        credentials=credentials,
        connect=connect,
        policy=policy,
        clock_ms=clock_ms,
        rng=rng,
        name=name,
    )
    for t in topics:
        conn._topics[t] = None
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_until_ready, conn)
        try:
            yield conn
        finally:
            nursery.cancel_scope.cancel()


async def _run_until_ready(
    conn: WsConnection, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """``conn.run`` reporting ``started()`` when its first connection is ready (or when
    it ended without one, so the caller's iteration raises the fatal error)."""
    conn._started_hook = task_status.started
    try:
        await conn.run()
    finally:
        hook, conn._started_hook = conn._started_hook, None
        if hook is not None:
            hook()
