"""The plain types around a Bybit WebSocket stream: what it is and how patient it is
(``WsOptions``, ``WsPolicy``), what it talks to (``WsLike``, ``ConnectFn``), and what its
callers receive (``Connected``/``Disconnected`` markers, a ``FrameSink``).

Why a module of its own: the stream's driver (``ws``), its protocol (``wsprotocol``), its
reconnect rule (``reconnect``) and the streams built on it all read these; here they
import none of them, so the sans-IO parts depend on plain data only. ``WsOptions`` is the
one object callers hand down, instead of a row of keyword arguments at every layer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs

from .auth import Credentials, wall_clock_ms

__all__ = [
    "ConnectFn",
    "Connected",
    "Disconnected",
    "FrameSink",
    "Item",
    "WsLike",
    "WsOptions",
    "WsPolicy",
    "safe_url",
]


class WsLike(Protocol):
    """The part of ``trio_websocket.WebSocketConnection`` we use."""

    async def send_message(self, message: str) -> None:
        """Send one text frame."""
        ...

    async def get_message(self) -> str | bytes:
        """Receive one frame (raises when the connection is closed)."""
        ...


ConnectFn = Callable[[str], AbstractAsyncContextManager[WsLike]]


class FrameSink(Protocol):
    """Takes data frames in the reader's own task (see ``WsConnection.deliver_to``)."""

    def frame(self, raw: str | bytes) -> None:
        """One data frame, as received. Must not block: it runs in the socket reader."""
        ...

    def dropped(self, reason: str) -> None:
        """The connection was lost (called before the ``Disconnected`` marker is queued)."""
        ...


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


#: what iterating a ``WsConnection`` yields: raw data frames and the markers
Item = str | bytes | Connected | Disconnected


def safe_url(url: str) -> str:
    """``url`` without userinfo, query or fragment: fit for a log line or an error."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@attrs.frozen(kw_only=True)
class WsPolicy:
    """Timing and patience of one WebSocket stream (durations in seconds).

    The heartbeat and auth fields are read by ``wsprotocol``, the backoff and give-up
    fields by ``reconnect``, the rest by the driver and its connectors.
    """

    #: a ping this long after the connection opened or the last pong (20 s is Bybit's
    #: recommendation)
    ping_interval_s: float = 20.0
    #: a ping unanswered this long means the connection is dead: replace it
    pong_timeout_s: float = 10.0
    #: an auth unanswered this long is a drop (retried like any other)
    auth_timeout_s: float = 10.0
    #: the auth signature's validity, from the clock in ``WsOptions.clock_ms``
    auth_expires_s: float = 5.0
    #: TCP + TLS + WebSocket handshake, and the close handshake on the way out
    connect_timeout_s: float = 10.0
    disconnect_timeout_s: float = 2.0
    #: the first reconnect waits about this long, each failure in a row doubles it,
    #: up to ``backoff_max_s``
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    #: a connection up this long was healthy: the next reconnect waits the least again
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


def _as_topics(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class WsOptions:
    """One stream's identity (name, key, topics), behaviour (``policy``) and plugs.

    The plugs are what a test swaps: ``connect`` (a function ``url -> async context
    manager`` yielding a ``WsLike``), the wall clock for the auth ``expires`` and the
    jitter's random source.
    """

    #: the stream's name in logs and markers (None: "private" with credentials, else
    #: "public")
    name: str | None = None
    #: the key pair of a private stream (None: a public stream, no auth)
    credentials: Credentials | None = None
    #: subscribed on the first connection and again after every reconnect
    topics: tuple[str, ...] = attrs.field(default=(), converter=_as_topics)
    policy: WsPolicy = attrs.field(factory=WsPolicy)
    #: None: trio-websocket with ``policy``'s timeouts and buffers
    connect: ConnectFn | None = None
    #: the clock (ms) Bybit judges the auth ``expires`` by: pass the exchange-aligned one
    clock_ms: Callable[[], float] = wall_clock_ms
    #: the backoff jitter's source (None: a fresh ``random.Random()``)
    rng: random.Random | None = None

    @property
    def stream_name(self) -> str:
        """``name``, or the default that follows from the credentials."""
        return self.name or ("private" if self.credentials else "public")
