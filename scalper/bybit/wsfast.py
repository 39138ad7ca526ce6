"""A lean WebSocket client connection for the public market-data stream: wsproto on a trio
stream, in the caller's task.

Why not trio-websocket here: it parses frames in a reader task of its own and hands each
message over a memory channel, so every frame costs a task switch before our reader even
sees it; on the public stream that hand-over cost more CPU than decoding the frame and
applying it to the book. Here ``get_message`` reads a chunk (up to ``receive_size``
bytes), lets wsproto cut it into messages and returns them one by one from a local
queue, in the task that called it: no extra task, no channel. It yields to the
scheduler at least every ``yield_every`` messages (and on every socket read), so a
flood cannot starve the other tasks.

It implements just what ``ws.WsLike`` asks (``send_message``, ``get_message``) for a
client: the handshake (with a connect timeout), text and binary messages (fragments
joined, bounded by ``max_message_size``), protocol pings answered, the close handshake,
TLS for ``wss://``. Every failure surfaces as an ``OSError`` or a trio stream error,
which ``WsConnection`` treats as a dropped connection (and reconnects).
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from urllib.parse import urlsplit

import attrs
import trio
import trio.lowlevel
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from .wsframes import FrameSplitter, FrameTooLarge

__all__ = ["WsProtoConnection", "open_wsproto"]


class WsClosed(OSError):
    """The connection is closed (by the peer, or after a protocol error)."""


@attrs.define(eq=False)
class WsProtoConnection:
    """One client connection; see the module docstring."""

    _stream: trio.abc.Stream
    _conn: WSConnection
    _receive_size: int = attrs.field(kw_only=True)
    _max: int = attrs.field(kw_only=True, alias="max_message_size")
    _yield_every: int = attrs.field(kw_only=True)
    _messages: deque[str | bytes] = attrs.field(factory=deque, init=False)
    _parts: list[str | bytes] = attrs.field(factory=list, init=False)
    _size: int = attrs.field(default=0, init=False)
    _since_yield: int = attrs.field(default=0, init=False)
    _closed: str | None = attrs.field(default=None, init=False)
    #: frames that came with the handshake's last read
    _leftover: bytes = attrs.field(default=b"", kw_only=True, alias="leftover")
    _send_lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    # data frames are cut out of the bytes here; wsproto sees only the rest (pings,
    # close, fragments) as whole frames: see bybit.wsframes
    _frames: FrameSplitter = attrs.field(init=False)
    #: frames may have come with the handshake's last read
    _fresh: bool = attrs.field(default=True, init=False)

    #: the socket's descriptor on plain TCP (-1 under TLS), looked up once: the close
    #: that frees it sets ``_closed`` first (``aclose``), so it is never read stale
    _fd: int = attrs.field(init=False)

    @_fd.default
    def _plain_fd(self) -> int:
        stream = self._stream
        return stream.socket.fileno() if type(stream) is trio.SocketStream else -1

    @_frames.default
    def _splitter(self) -> FrameSplitter:
        return FrameSplitter(self._max)

    @property
    def buffered(self) -> deque[str | bytes]:
        """Messages already cut out of the bytes read, not returned yet: while it is not
        empty, the message just returned is part of a burst (``WsConnection.more``)."""
        return self._messages

    async def send_message(self, message: str) -> None:
        """Send one text message."""
        if self._closed is not None:
            raise WsClosed(self._closed)
        await self._send(self._conn.send(TextMessage(data=message)))

    async def get_message(self) -> str | bytes:
        """The next message; raises ``WsClosed`` once the connection is closed."""
        messages = self._messages
        if self._fresh:
            self._fresh = False
            await self._receive(self._leftover)
        if messages:
            self._since_yield += 1
            if self._since_yield >= self._yield_every:
                self._since_yield = 0
                await trio.lowlevel.checkpoint()
            return messages.popleft()
        fd = self._fd
        while not messages:
            if self._closed is not None:
                raise WsClosed(self._closed)
            # perf: on plain TCP, wait for the socket and read it directly, right here:
            # trio's receive_some (a recv that fails first, its conflict detector, its
            # error translation) and a coroutine level of our own cost a third of a
            # steady-rate wake-up. TLS keeps receive_some. A socket closed during the
            # wait wakes it with ClosedResourceError (trio notifies waiters on close).
            if fd >= 0:
                await trio.lowlevel.wait_readable(fd)  # a checkpoint
                try:
                    data = os.read(fd, self._receive_size)  # a closed one: EBADF
                except BlockingIOError:
                    continue
            else:
                data = bytes(await self._stream.receive_some(self._receive_size))
            self._since_yield = 0
            if not data:
                self._closed = "connection closed by the peer"
                raise WsClosed(self._closed)
            await self._receive(data)
        return messages.popleft()

    async def _receive(self, data: bytes) -> None:
        slow = self._split(data)
        if slow is not None:  # not a plain data frame: wsproto's, then the rest
            await self._slow(slow)

    def _split(self, data: bytes = b"") -> bytes | None:
        # perf: the fast lane queues plain data frames; any other frame goes to wsproto
        # whole and in order (its events are queued before the frames after it)
        try:
            return self._frames.split(self._messages, data)
        except FrameTooLarge as exc:  # a frame announced more than it may carry
            self._closed = str(exc)
            raise WsClosed(self._closed) from None

    async def _slow(self, frame: bytes | None) -> None:
        """Hand ``frame`` to wsproto, and so each next frame that needs it."""
        while frame is not None:
            self._conn.receive_data(frame)
            await self._events()
            frame = self._split()

    async def _events(self) -> None:
        for event in self._conn.events():
            if isinstance(event, TextMessage | BytesMessage):
                raw = event.data
                data: str | bytes = bytes(raw) if isinstance(raw, bytearray) else raw
                self._size += len(data)
                if self._size > self._max:
                    self._closed = f"message larger than {self._max} bytes"
                    raise WsClosed(self._closed)
                if event.message_finished and not self._parts:
                    self._messages.append(data)
                    self._size = 0
                    continue
                self._parts.append(data)
                if event.message_finished:
                    joined = "" if isinstance(event, TextMessage) else b""
                    self._messages.append(joined.join(self._parts))  # type: ignore[arg-type]
                    self._parts.clear()
                    self._size = 0
            elif isinstance(event, Ping):
                await self._send(self._conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._closed = f"closed by the peer: {event.code} {event.reason}"
                # the peer may be gone already: we are closing anyway
                with suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._send(self._conn.send(event.response()))
                if not self._messages:
                    raise WsClosed(self._closed)

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            await self._stream.send_all(data)

    async def aclose(self) -> None:
        """Start the close handshake (best effort) and close the socket."""
        if self._closed is None:
            self._closed = "closed by us"
            with suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                await self._send(self._conn.send(CloseConnection(code=1000)))
        await trio.aclose_forcefully(self._stream)


async def _handshake(stream: trio.abc.Stream, conn: WSConnection, host: str, target: str) -> bytes:
    """Upgrade the connection; returns the bytes read past the HTTP response (frames)."""
    await stream.send_all(conn.send(Request(host=host, target=target)))
    head = b""
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise WsClosed("connection closed during the WebSocket handshake")
        # perf: wsproto gets the response only, the frames after it go to the splitter
        head += bytes(data)
        end = head.find(b"\r\n\r\n")
        if end < 0:
            continue
        conn.receive_data(head[: end + 4])
        rest, head = head[end + 4 :], b""
        for event in conn.events():
            if isinstance(event, AcceptConnection):
                return rest
            if isinstance(event, RejectConnection | RejectData):
                raise WsClosed(f"WebSocket handshake refused ({getattr(event, 'status_code', '')})")
        head = rest  # no verdict yet (an interim response): read on


@asynccontextmanager
async def open_wsproto(
    url: str,
    *,
    connect_timeout: float = 10.0,
    disconnect_timeout: float = 2.0,
    receive_size: int = 64 * 1024,
    max_message_size: int = 4 * 1024 * 1024,
    yield_every: int = 16,
) -> AsyncIterator[WsProtoConnection]:
    """Connect to ``url`` (``ws://`` or ``wss://``); the connection for the block."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise WsClosed(f"not a WebSocket URL: {parts.scheme}://{parts.hostname}")
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    with trio.move_on_after(connect_timeout) as scope:
        stream: trio.abc.Stream
        if secure:
            stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=ssl.create_default_context()
            )
        else:
            stream = await trio.open_tcp_stream(host, port)
        conn = WSConnection(ConnectionType.CLIENT)
        try:
            leftover = await _handshake(stream, conn, netloc, target)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    if scope.cancelled_caught:
        raise WsClosed(f"no WebSocket connection within {connect_timeout}s")
    ws = WsProtoConnection(
        stream,
        conn,
        receive_size=receive_size,
        max_message_size=max_message_size,
        yield_every=yield_every,
        leftover=leftover,
    )
    try:
        yield ws
    finally:
        with trio.move_on_after(disconnect_timeout) as closing:
            closing.shield = True
            await ws.aclose()


def wsproto_connect(
    connect_timeout: float, disconnect_timeout: float
) -> Callable[[str], AbstractAsyncContextManager[WsProtoConnection]]:
    """A ``ws.ConnectFn`` opening ``WsProtoConnection``s."""

    def connect(url: str) -> AbstractAsyncContextManager[WsProtoConnection]:
        return open_wsproto(
            url, connect_timeout=connect_timeout, disconnect_timeout=disconnect_timeout
        )

    return connect
