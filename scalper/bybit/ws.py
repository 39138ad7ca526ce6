"""A self-healing Bybit WebSocket connection (public or private): the trio driver.

Use::

    options = WsOptions(credentials=creds, topics=["order", "execution"])
    async with open_ws(url, options) as conn:       # returns once connected
        async for item in conn:
            if isinstance(item, Connected): ...      # (re)connected: resync state
            elif isinstance(item, Disconnected): ...  # dropped: data may be missing
            else: ...                                  # a raw data frame (str/bytes)

The rules live in two plain objects; this module only connects, pumps frames between
the socket and them, sends what they queue and sleeps until their next deadline:

* ``wsprotocol.WsProtocol``: auth before subscribe (``expires`` = now +
  ``auth_expires_s``), a ping every ``ping_interval_s`` and a drop when no pong comes
  within ``pong_timeout_s`` (or no auth reply within ``auth_timeout_s``), every topic
  subscribed again after each reconnect, a refused subscribe ends the connection.
* ``reconnect.Reconnect``: backoff with jitter between attempts, reset once a connection
  stayed up for ``healthy_after_s``; ``max_initial_failures`` before a first success
  end the stream with a ``StreamError`` naming the URL, ``max_failures`` after one;
  ``max_auth_failures`` refused auths in a row end it with ``StreamAuthError``.

The caller sees a ``Disconnected(reason)`` marker when a connection is lost and a
``Connected(reconnect=True)`` marker when the next one is ready, so it can drop and
rebuild whatever state it derived from the stream (books, order state). Control
replies are consumed here; only data frames reach the caller, as raw text, so the
market-data hot path parses each frame once.
Tests inject ``WsOptions.connect`` (any ``url -> async context manager`` of a ``WsLike``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Sized
from contextlib import asynccontextmanager

import trio
from loguru import logger

from .errors import StreamAuthError, StreamError
from .parse import ParseStats
from .reconnect import Attempt, GiveUp, Reconnect, Verdict
from .wsconnect import DROPPED as _DROPPED
from .wsconnect import DROPS as _DROPS
from .wsconnect import ENDED as _ENDED
from .wsconnect import Dropped as _Dropped
from .wsconnect import default_connect
from .wsevents import AuthAccepted, AuthRefused, Refused
from .wsprotocol import DATA_KEY, DATA_KEY_BYTES, Phase, WsProtocol
from .wstypes import (
    Connected,
    ConnectFn,
    Disconnected,
    FrameSink,
    Item,
    WsLike,
    WsOptions,
    WsPolicy,
    safe_url,
)

__all__ = [
    "ConnectFn",
    "Connected",
    "Disconnected",
    "FrameSink",
    "WsConnection",
    "WsLike",
    "WsOptions",
    "WsPolicy",
    "default_connect",
    "open_ws",
    "safe_url",
]


class WsConnection:
    """One logical Bybit stream that survives drops. Iterate it for frames and markers.

    Build it with ``open_ws``; ``run`` is the connection loop that ``open_ws`` starts.
    """

    def __init__(self, url: str, options: WsOptions | None = None) -> None:
        options = options or WsOptions()
        self.url = url
        self.policy = options.policy
        self.name = options.stream_name
        self._log = logger.bind(stream=self.name)
        self._connect = options.connect or default_connect(options.policy)
        self._clock_ms = options.clock_ms
        stats = ParseStats(name=f"{self.name}-control")
        self._proto = WsProtocol(options.policy, options.credentials, stats)
        self._proto.subscribe(options.topics)
        self._reconnect = Reconnect(options.policy, options.rng or random.Random())
        self._ws: WsLike | None = None
        self._send_lock = trio.Lock()
        self._ready = trio.Event()
        self._error: BaseException | None = None
        self._fatal: StreamAuthError | None = None
        self._send_items, self._items = trio.open_memory_channel[Item](options.policy.queue_size)
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
        #: while the sink is handed a frame: more frames of the same read follow it
        #: (known for transports that expose ``buffered``, as ``bybit.wsfast`` does)
        self.more = False

    def __repr__(self) -> str:
        return f"WsConnection({self.name}, {safe_url(self.url)!r}, topics={self.topics})"

    @property
    def topics(self) -> list[str]:
        """Topics currently subscribed (and re-subscribed after every reconnect)."""
        return self._proto.wanted

    @property
    def control_stats(self) -> ParseStats:
        """Unusable frames without a topic (broken control replies), counted."""
        return self._proto.control_stats

    # ------------------------------------------------------------ caller API

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe now if connected; in any case after every reconnect."""
        self._proto.subscribe(topics)
        await self._flush_quietly()

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Stop receiving ``topics`` (and forget them for reconnects)."""
        self._proto.unsubscribe(topics)
        await self._flush_quietly()

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

        A fatal error (auth refused too often, ``max_failures`` reached) ends the
        iteration: the caller's ``async for`` raises it.
        """
        log = self._log
        async with self._send_items:
            while True:
                before = self.connections
                reason = "closed"
                refused: StreamAuthError | None = None
                try:
                    async with self._connect(self.url) as ws:
                        reason = await self._session(ws)
                except* StreamAuthError as group:
                    refused = group.exceptions[0]  # type: ignore[assignment]
                    reason = str(refused)
                except* _DROPS as group:
                    exc = group.exceptions[0]
                    reason = f"{type(exc).__name__}: {exc}"[:300]
                ready = self.connections > before
                if ready:
                    self.drops += 1
                    self.last_drop_reason = reason
                    if self._sink is not None:
                        self._sink.dropped(reason)
                    await self._send_items.send(Disconnected(self.name, reason))
                lived = trio.current_time() - self._last_ready
                attempt = Attempt(ready=ready, lived_s=lived, auth_refused=refused is not None)
                decision = self._reconnect.ended(attempt)
                if isinstance(decision, GiveUp):
                    self._error = self._gave_up(decision, reason, refused)
                    log.error("{} stream stopped: {}", self.name, self._error)
                    return
                log.warning(
                    "{} stream dropped ({}); reconnecting in {:.2f}s",
                    self.name,
                    reason,
                    decision.delay_s,
                )
                await trio.sleep(decision.delay_s)

    def _gave_up(
        self, decision: GiveUp, reason: str, refused: StreamAuthError | None
    ) -> BaseException:
        n = decision.failures
        if decision.verdict is Verdict.AUTH_REFUSED and refused is not None:
            return refused
        if decision.verdict is Verdict.NEVER_CONNECTED:
            what = f"could not connect to {safe_url(self.url)} ({n} attempts failed)"
        else:
            what = f"{n} connections failed in a row"
        return StreamError(f"{self.name} stream: {what}; last: {reason}")

    async def _session(self, ws: WsLike) -> str:
        """Serve one connection until it drops; returns why it dropped."""
        proto = self._proto
        self._drop_reason = "closed"
        self._fatal = None
        self._ready = ready = trio.Event()
        proto.connection_made(trio.current_time(), self._clock_ms())
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                # The reader starts first: someone has to read the auth reply.
                nursery.start_soon(self._reader, ws, scope)
                nursery.start_soon(self._timer, ws, scope)
                try:
                    if proto.phase is Phase.OPEN:
                        await self._opened(ws)
                    else:
                        await self._flush(ws)  # the auth frame
                    await ready.wait()
                except _DROPPED as exc:
                    self._drop(exc, scope)
                else:
                    await self._connected()
        finally:
            self._ws = None
            proto.connection_lost()
        if self._fatal is not None:
            raise self._fatal
        return self._drop_reason

    async def _connected(self) -> None:
        self.connections = n = self.connections + 1
        self._last_ready = trio.current_time()
        topics = len(self._proto.wanted)
        self._log.info("{} stream connected (#{}), {} topic(s)", self.name, n, topics)
        await self._send_items.send(Connected(self.name, reconnect=n > 1, count=n))
        hook, self._started_hook = self._started_hook, None
        if hook is not None:
            hook()

    async def _opened(self, ws: WsLike) -> None:
        """The protocol is OPEN: send the subscriptions, take callers' frames, go ready."""
        self._ws = ws
        await self._flush_quietly()
        self._ready.set()

    def _drop(self, exc: BaseException, scope: trio.CancelScope) -> None:
        if isinstance(exc, _Dropped):
            self._drop_reason = str(exc)
        else:
            self._drop_reason = f"{type(exc).__name__}: {exc}"[:300]
        scope.cancel()

    def _ended(self, exc: BaseException, scope: trio.CancelScope) -> None:
        """The reader or timer stopped on ``exc`` (one of ``_ENDED``): a drop ends the
        whole session, not the program; a refused auth ends the stream."""
        if isinstance(exc, StreamAuthError):
            self._fatal = exc
            scope.cancel()
        else:
            self._drop(exc, scope)

    async def _reader(self, ws: WsLike, scope: trio.CancelScope) -> None:
        """Route each frame (sink, queue or protocol) until the session ends (``_ended``:
        no wrapper task level, which every frame's wake-up would resume too)."""
        send = self._send_items.send
        # Frames trio-websocket has already parsed can be taken without a checkpoint
        # each: a burst of them reaches the sink back to back, so the market data
        # coalesces (latest book wins) instead of waking the strategy once per frame.
        # Its queue is private API, so this is only used where it is present.
        queued = getattr(getattr(ws, "_recv_channel", None), "receive_nowait", None)
        pending: Sized = getattr(ws, "buffered", ())
        burst = self.policy.burst
        key, key_bytes = DATA_KEY, DATA_KEY_BYTES  # the protocol's ``is_data``, without a call
        try:
            while True:
                frame = await ws.get_message()
                taken = 0
                while True:
                    if (key_bytes in frame) if type(frame) is bytes else (key in frame):
                        sink = self._sink
                        if sink is None:
                            await send(frame)
                        else:
                            self.more = len(pending) > 0
                            sink.frame(frame)  # get_message() above was the checkpoint
                    else:
                        await self._control(ws, frame)
                    taken += 1
                    if queued is None or taken >= burst or self._sink is None:
                        break
                    try:
                        frame = queued()
                    except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                        break  # nothing more now; a closed connection raises in get_message
        except _ENDED as exc:
            self._ended(exc, scope)

    async def _control(self, ws: WsLike, frame: str | bytes) -> None:
        proto = self._proto
        event = proto.receive(frame, trio.current_time())
        if type(event) is Refused:
            self._log.warning("{} stream: {} refused: {}", self.name, event.op, event.reason)
        elif type(event) is AuthRefused:
            raise StreamAuthError(f"{self.name} stream auth refused: {event.reason}")
        elif type(event) is AuthAccepted:
            await self._opened(ws)
        if proto.close_reason is not None:
            raise _Dropped(proto.close_reason)

    async def _timer(self, ws: WsLike, scope: trio.CancelScope) -> None:
        """Sleep until the protocol's next deadline, let it act (ping, or give up)."""
        proto = self._proto
        try:
            while True:
                deadline = proto.next_deadline()
                if deadline is None:
                    await trio.sleep_forever()  # CLOSING: the session is ending
                else:
                    await trio.sleep_until(deadline)
                silent = proto.tick(trio.current_time())
                if silent is not None:
                    raise _Dropped(silent.reason)
                await self._flush(ws)
        except _ENDED as exc:
            self._ended(exc, scope)

    async def _flush(self, ws: WsLike) -> None:
        """Send every frame the protocol queued, in order."""
        async with self._send_lock:
            while frames := self._proto.data_to_send():
                for frame in frames:
                    await ws.send_message(frame)

    async def _flush_quietly(self) -> None:
        """Flush (un)subscribes to an OPEN connection; a dead socket is ignored (the
        reader notices the drop, and the topics are sent again on reconnect)."""
        ws = self._ws
        if ws is None:
            return
        try:
            await self._flush(ws)
        except _DROPS as exc:
            self._log.debug("{} not sent ({}): drop pending", "ops", exc)


@asynccontextmanager
async def open_ws(url: str, options: WsOptions | None = None) -> AsyncIterator[WsConnection]:
    """Run a ``WsConnection`` for the duration of the block; returns once connected.

    ``options.topics`` are subscribed on the first connection (and every later one).
    Leaving the block closes the connection.
    """
    conn = WsConnection(url, options)
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
