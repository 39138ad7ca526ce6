"""Private stream fan-out: authenticated connections per API key and their topics.

The venue hands ``push(api_key, messages, now_ms)`` a list of ``(topic, rows)`` in
Bybit's order (order, execution, execution.fast, position, wallet); each connection of
that key subscribed to the topic (or to its ``.linear`` variant) gets
``{"id", "topic", "creationTime", "data"}`` (``execution.fast`` has no ``id``). The
``drop_private_push`` fault swallows the next N messages.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import orjson

from .outbox import Outbox

__all__ = ["PRIVATE_TOPICS", "PrivateConn", "PrivateHub"]

#: topics a private connection may subscribe to
PRIVATE_TOPICS = frozenset(
    {
        "order",
        "order.linear",
        "execution",
        "execution.linear",
        "execution.fast",
        "execution.fast.linear",
        "position",
        "position.linear",
        "wallet",
    }
)


@attrs.define(eq=False)  # identity: a connection is kept in sets
class PrivateConn:
    """One authenticated private connection: its outbox and subscribed topics."""

    api_key: str
    outbox: Outbox
    topics: set[str] = attrs.field(factory=set)


@attrs.define(eq=False)
class PrivateHub:
    """Authenticated private connections by API key."""

    conns: dict[str, set[PrivateConn]] = attrs.field(factory=dict)
    #: fault: swallow this many pushes
    drop: int = 0
    dropped: int = 0
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def add(self, conn: PrivateConn) -> None:
        """Register an authenticated connection."""
        self.conns.setdefault(conn.api_key, set()).add(conn)

    def remove(self, conn: PrivateConn) -> None:
        """Forget a closed connection."""
        conns = self.conns.get(conn.api_key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.conns[conn.api_key]

    def wants(self, api_key: str) -> bool:
        """True when some connection of this key listens (skip building rows otherwise)."""
        return any(c.topics for c in self.conns.get(api_key, ()))

    def push(
        self, api_key: str, messages: list[tuple[str, list[dict[str, Any]]]], now_ms: int
    ) -> None:
        """Queue the messages on every connection of ``api_key`` subscribed to them."""
        for topic, data in messages:
            linear = f"{topic}.linear"
            texts: dict[str, str] = {}
            for conn in self.conns.get(api_key, ()):
                name = (
                    topic if topic in conn.topics else (linear if linear in conn.topics else None)
                )
                if name is None:
                    continue
                if self.drop:
                    self.drop -= 1
                    self.dropped += 1
                    continue
                text = texts.get(name)
                if text is None:
                    if topic == "execution.fast":
                        msg: dict[str, Any] = {"topic": name, "creationTime": now_ms, "data": data}
                    else:
                        msg = {
                            "id": f"{next(self._ids)}{api_key[:4]}-{now_ms}",
                            "topic": name,
                            "creationTime": now_ms,
                            "data": data,
                        }
                    text = texts[name] = orjson.dumps(msg).decode()
                conn.outbox.put(text)
