"""What ``wsprotocol.WsProtocol`` reports: one small frozen value per kind of control reply.

Why a module of its own: the driver and the tests speak in these, without the protocol's
state; each says what it means for the connection, so a reader of the driver knows what
to do with it from here alone.
"""

from __future__ import annotations

import attrs

__all__ = [
    "MALFORMED",
    "PONG",
    "AuthAccepted",
    "AuthRefused",
    "Ignored",
    "Malformed",
    "Pong",
    "Refused",
    "Silent",
    "Subscribed",
    "Unsubscribed",
    "WsEvent",
]


@attrs.frozen
class Pong:
    """Bybit answered a ping."""


@attrs.frozen
class AuthAccepted:
    """Bybit accepted our auth: the subscriptions are queued, the stream is OPEN."""


@attrs.frozen
class AuthRefused:
    """Bybit refused our auth (``reason`` redacted); the connection is CLOSING."""

    reason: str


@attrs.frozen
class Subscribed:
    """Bybit confirmed a subscribe request of these topics."""

    topics: tuple[str, ...]


@attrs.frozen
class Unsubscribed:
    """Bybit confirmed an unsubscribe request of these topics."""

    topics: tuple[str, ...]


@attrs.frozen
class Refused:
    """Bybit refused one of our ops (``reason`` redacted). A refused subscribe leaves a
    topic dead on this connection with nothing to revive it: the connection is CLOSING."""

    op: str
    topics: tuple[str, ...]
    reason: str


@attrs.frozen
class Ignored:
    """A well-formed frame with nothing to do in this state."""

    op: str


@attrs.frozen
class Malformed:
    """An unusable frame without a topic, counted in ``control_stats``."""


@attrs.frozen
class Silent:
    """A deadline passed with no answer (no pong, no auth reply); the connection is CLOSING."""

    reason: str


#: what ``receive`` and ``tick`` report
WsEvent = (
    Pong
    | AuthAccepted
    | AuthRefused
    | Subscribed
    | Unsubscribed
    | Refused
    | Ignored
    | Malformed
    | Silent
)

#: the two events without data, made once (a pong arrives every ping interval)
PONG = Pong()
MALFORMED = Malformed()
