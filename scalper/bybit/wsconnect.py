"""The socket edge of a Bybit WebSocket stream: opening one, and knowing it is gone.

Why a module of its own: ``ws.WsConnection`` takes any ``ConnectFn`` (trio-websocket
here, the lean wsproto connection of ``wsfast`` for the public stream, a fake in tests)
and must tell a lost socket, which starts a reconnect, from a bug, which must not be
retried. Both facts are about the transports, not about the stream's rules.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import trio
import trio_websocket

from .errors import StreamAuthError
from .wstypes import ConnectFn, WsLike, WsPolicy

__all__ = ["DROPPED", "DROPS", "ENDED", "Dropped", "default_connect"]

#: What ends a connection (and starts a reconnect) rather than the program; the
#: ``wsfast`` connection raises ``OSError`` subclasses.
DROPS: tuple[type[BaseException], ...] = (
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.EndOfChannel,
    OSError,
)


class Dropped(Exception):
    """This connection is finished, by our protocol's rules (reason in the message)."""


#: what ends one connection: the transport's drops, or our protocol closing it
DROPPED: tuple[type[BaseException], ...] = (Dropped, *DROPS)
#: what ends a session's reader or timer: a drop, or a refused auth (the whole stream)
ENDED: tuple[type[BaseException], ...] = (StreamAuthError, *DROPPED)


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
