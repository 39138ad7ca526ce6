"""Bybit's v5 WebSocket protocol as a plain object: frames in, events out, frames to send.

Why a plain object: the rules of the conversation -- authenticate before subscribing,
ping on a schedule and give up on a silent peer, re-subscribe everything after a
reconnect, start over when Bybit refuses a topic -- are then tested as lists of frames
and times, with no socket, task or clock. ``ws.WsConnection`` only moves frames between
a socket and this object and sleeps until ``next_deadline``.

One ``WsProtocol`` serves one logical stream across its connections: the topics wanted
survive a reconnect, everything else is per connection. Time comes in as arguments:
``now`` (seconds on the driver's monotonic clock) and ``wall_ms`` (the clock Bybit judges
the auth ``expires`` by).

The states and what moves them (``_NEXT``)::

    IDLE            --connection_made, public-------------> OPEN
    IDLE            --connection_made, private------------> AUTHENTICATING  (auth queued)
    AUTHENTICATING  --auth accepted-----------------------> OPEN            (subscribes queued)
    AUTHENTICATING  --auth refused, or no reply in time---> CLOSING
    OPEN            --subscribe refused, or no pong-------> CLOSING
    any but IDLE    --connection_lost---------------------> IDLE

A call the table does not allow in the current state is a bug in the driver: it raises
``ValueError`` naming the state and the input and changes nothing. A frame from Bybit
that does not fit the state (an auth reply while OPEN, a refusal while CLOSING) is the
peer's doing, not ours: it comes back as ``Ignored``.

The events are in ``wsevents``. Data frames (they carry ``"topic"``; control replies
never do) are returned untouched, so the market-data path parses each frame once, and
``is_data`` lets a driver route them without a call into the object per frame (or
``DATA_KEY`` / ``DATA_KEY_BYTES``, its test, without a call at all).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable

import attrs
import orjson

from .auth import Credentials, redact, ws_auth_signature
from .parse import ControlMessage, ParseStats, parse_message
from .wsevents import (
    MALFORMED,
    PONG,
    AuthAccepted,
    AuthRefused,
    Ignored,
    Refused,
    Silent,
    Subscribed,
    Unsubscribed,
    WsEvent,
)
from .wstypes import WsPolicy

__all__ = ["DATA_KEY", "DATA_KEY_BYTES", "MAX_TOPICS_PER_REQUEST", "Phase", "WsProtocol", "is_data"]

#: topics in one subscribe/unsubscribe request (the strictest of Bybit's per-request limits)
MAX_TOPICS_PER_REQUEST = 10


#: what a data frame has and a control reply never does (as text, and as bytes)
DATA_KEY = '"topic"'
DATA_KEY_BYTES = DATA_KEY.encode()


def is_data(frame: str | bytes) -> bool:
    """A data frame (for the data path) rather than a control reply (for the protocol)."""
    return DATA_KEY_BYTES in frame if type(frame) is bytes else DATA_KEY in frame


class Phase(enum.Enum):
    """Where one connection stands."""

    #: no connection: topics asked for are only remembered
    IDLE = "idle"
    #: connected, our ``auth`` sent, Bybit's answer awaited (private streams)
    AUTHENTICATING = "authenticating"
    #: subscriptions sent, heartbeat running: data flows, (un)subscribes go out at once
    OPEN = "open"
    #: this connection is finished (``close_reason`` says why): drop it
    CLOSING = "closing"


class _Input(enum.Enum):
    CONNECT_PUBLIC = "connection_made (public)"
    CONNECT_PRIVATE = "connection_made (private)"
    AUTH_ACCEPTED = "auth accepted"
    AUTH_REFUSED = "auth refused"
    SUBSCRIBE_REFUSED = "subscribe refused"
    TIMEOUT = "deadline passed"
    LOST = "connection_lost"


_I = _Input
_NEXT: dict[Phase, dict[_Input, Phase]] = {
    Phase.IDLE: {_I.CONNECT_PUBLIC: Phase.OPEN, _I.CONNECT_PRIVATE: Phase.AUTHENTICATING},
    Phase.AUTHENTICATING: {
        _I.AUTH_ACCEPTED: Phase.OPEN,
        _I.AUTH_REFUSED: Phase.CLOSING,
        _I.TIMEOUT: Phase.CLOSING,
        _I.LOST: Phase.IDLE,
    },
    Phase.OPEN: {
        _I.SUBSCRIBE_REFUSED: Phase.CLOSING,
        _I.TIMEOUT: Phase.CLOSING,
        _I.LOST: Phase.IDLE,
    },
    Phase.CLOSING: {_I.LOST: Phase.IDLE},
}


@attrs.frozen
class _Request:
    req_id: str
    op: str
    topics: tuple[str, ...]


# ---------------------------------------------------------------- the protocol


@attrs.define(eq=False)
class WsProtocol:
    """One stream's side of Bybit's WebSocket protocol; see the module docstring."""

    policy: WsPolicy
    #: the key pair of a private stream (None: public, no auth)
    credentials: Credentials | None = attrs.field(default=None, repr=False)
    #: unusable frames without a topic (broken control replies), counted
    control_stats: ParseStats = attrs.field(factory=ParseStats)
    phase: Phase = attrs.field(default=Phase.IDLE, init=False)
    #: why the connection is CLOSING (None before)
    close_reason: str | None = attrs.field(default=None, init=False)
    #: topics confirmed by Bybit on this connection
    confirmed: set[str] = attrs.field(factory=set, init=False)
    _wanted: dict[str, None] = attrs.field(factory=dict, init=False)  # an ordered set
    _outbox: list[str] = attrs.field(factory=list, init=False, repr=False)  # has auth frames
    _pending: list[_Request] = attrs.field(factory=list, init=False)
    _req_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _auth_by: float | None = attrs.field(default=None, init=False)
    _ping_at: float | None = attrs.field(default=None, init=False)
    _pong_by: float | None = attrs.field(default=None, init=False)

    @property
    def wanted(self) -> list[str]:
        """Topics asked for (and subscribed again on every connection), in order."""
        return list(self._wanted)

    # ------------------------------------------------------------ connection life

    def connection_made(self, now: float, wall_ms: float) -> None:
        """A new connection is up: queue the auth (private) or the subscriptions."""
        creds = self.credentials
        self._move(_I.CONNECT_PUBLIC if creds is None else _I.CONNECT_PRIVATE)
        if creds is None:
            self._opened(now)
            return
        expires = int(wall_ms + self.policy.auth_expires_s * 1000)
        signature = ws_auth_signature(creds.api_secret, expires)
        self._send(
            {
                "req_id": self._req_id("auth"),
                "op": "auth",
                "args": [creds.api_key, expires, signature],
            }
        )
        self._auth_by = now + self.policy.auth_timeout_s

    def connection_lost(self) -> None:
        """The connection is gone: forget everything but the topics wanted."""
        self._move(_I.LOST)
        self.close_reason = None
        self.confirmed.clear()
        self._outbox.clear()
        self._pending.clear()
        self._auth_by = self._ping_at = self._pong_by = None

    # ------------------------------------------------------------ what the caller asks

    def subscribe(self, topics: Iterable[str]) -> None:
        """Want ``topics``: subscribed now if OPEN, in any case on every connection."""
        new = [t for t in topics if t not in self._wanted]
        self._wanted.update(dict.fromkeys(new))
        if self.phase is Phase.OPEN:
            self._request("subscribe", new)

    def unsubscribe(self, topics: Iterable[str]) -> None:
        """Stop wanting ``topics`` (unsubscribed now if OPEN)."""
        gone = [t for t in topics if t in self._wanted]
        for t in gone:
            del self._wanted[t]
        if self.phase is Phase.OPEN:
            self._request("unsubscribe", gone)

    def data_to_send(self) -> list[str]:
        """The frames queued since the last call, in order (the queue is emptied)."""
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When ``tick`` has something to do: an auth or pong deadline, or the next ping."""
        if self.phase is Phase.AUTHENTICATING:
            return self._auth_by
        if self.phase is Phase.OPEN:
            return self._ping_at if self._pong_by is None else self._pong_by
        return None

    def overdue(self, now: float) -> str | None:
        """Why the connection is silent past its deadline at ``now`` (None: it is not)."""
        p = self.policy
        if (
            self.phase is Phase.AUTHENTICATING
            and self._auth_by is not None
            and now >= self._auth_by
        ):
            return f"no auth reply in {p.auth_timeout_s}s"
        if self.phase is Phase.OPEN and self._pong_by is not None and now >= self._pong_by:
            return f"no pong within {p.pong_timeout_s}s"
        return None

    def tick(self, now: float) -> Silent | None:
        """Time passed: queue a ping when one is due; a deadline missed is ``Silent``."""
        reason = self.overdue(now)
        if reason is not None:
            self._close(_I.TIMEOUT, reason)
            return Silent(reason)
        ping_at = self._ping_at
        due = ping_at is not None and now >= ping_at
        if due and self.phase is Phase.OPEN and self._pong_by is None:
            self._outbox.append(f'{{"req_id":"{next(self._req_ids)}","op":"ping"}}')
            self._pong_by = now + self.policy.pong_timeout_s
        return None

    # ------------------------------------------------------------ frames in

    def receive(self, frame: str | bytes, now: float) -> str | bytes | WsEvent:
        """One frame received at ``now``: a data frame comes back untouched, a control
        reply as the event it means (state updated, frames to send queued)."""
        if self.phase is Phase.IDLE:
            raise ValueError(f"frame received in state {self.phase.name}: no connection")
        if is_data(frame):
            return frame
        msg = parse_message(frame, self.control_stats)
        if msg is None:
            return MALFORMED
        if not isinstance(msg, ControlMessage):
            return Ignored("")
        if self.phase is Phase.CLOSING:
            return Ignored(msg.op)
        if msg.is_pong:
            if self.phase is Phase.OPEN and self._pong_by is not None:
                self._pong_by = None
                self._ping_at = now + self.policy.ping_interval_s
            return PONG
        if msg.op == "auth":
            return self._auth_reply(msg, now)
        topics = self._answered(msg)
        if msg.success is False:
            reason = self._redact(msg.ret_msg)[:200]
            if msg.op == "subscribe" and self.phase is Phase.OPEN:
                self._close(_I.SUBSCRIBE_REFUSED, f"subscribe refused: {reason}")
            return Refused(msg.op, topics, reason)
        if msg.op == "subscribe":
            self.confirmed.update(topics)
            return Subscribed(topics)
        if msg.op == "unsubscribe":
            self.confirmed.difference_update(topics)
            return Unsubscribed(topics)
        return Ignored(msg.op)

    # ------------------------------------------------------------ internals

    def _auth_reply(self, msg: ControlMessage, now: float) -> WsEvent:
        if self.phase is not Phase.AUTHENTICATING:
            return Ignored("auth")
        if msg.success is not True:
            reason = self._redact(msg.ret_msg)[:200]
            self._close(_I.AUTH_REFUSED, f"auth refused: {reason}")
            return AuthRefused(reason)
        self._move(_I.AUTH_ACCEPTED)
        self._auth_by = None
        self._opened(now)
        return AuthAccepted()

    def _opened(self, now: float) -> None:
        self._request("subscribe", list(self._wanted))
        self._ping_at = now + self.policy.ping_interval_s

    def _answered(self, msg: ControlMessage) -> tuple[str, ...]:
        """The topics of the request ``msg`` answers: by ``req_id``, else the oldest
        request of that op (Bybit answers in order)."""
        for i, req in enumerate(self._pending):
            if (req.req_id == msg.req_id) if msg.req_id else (req.op == msg.op):
                return self._pending.pop(i).topics
        return ()

    def _request(self, op: str, topics: list[str]) -> None:
        for i in range(0, len(topics), MAX_TOPICS_PER_REQUEST):
            chunk = topics[i : i + MAX_TOPICS_PER_REQUEST]
            req_id = self._req_id(op)
            self._pending.append(_Request(req_id, op, tuple(chunk)))
            self._send({"req_id": req_id, "op": op, "args": chunk})

    def _req_id(self, op: str) -> str:
        return f"{op}-{next(self._req_ids)}"

    def _send(self, msg: dict[str, object]) -> None:
        self._outbox.append(orjson.dumps(msg).decode())

    def _redact(self, text: str) -> str:
        creds = self.credentials
        return redact(text) if creds is None else redact(text, creds.api_key, creds.api_secret)

    def _close(self, cause: _Input, reason: str) -> None:
        self._move(cause)
        self.close_reason = reason

    def _move(self, cause: _Input) -> None:
        nxt = _NEXT[self.phase].get(cause)
        if nxt is None:
            raise ValueError(f"{cause.value} is not allowed in state {self.phase.name}")
        self.phase = nxt
