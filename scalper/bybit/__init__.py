"""The client side of Bybit's v5 wire format: signing, REST, WebSockets, parsing.

``errors`` (the error tree), ``auth`` (signing), ``paths`` (every REST path), ``rest``
(``BybitRest``, the REST facade: the endpoint groups ``market``, ``account`` and
``trading`` on ``endpoints``, over ``transport`` (one signed attempt), ``pacing`` (rate
limits), ``retry`` (retry loop and ``RetryPolicy``) and ``orders`` (idempotent order
create)), ``ws`` (``WsConnection``/``open_ws``, the trio driver around the sans-IO
``wsprotocol`` and ``reconnect``, configured by one ``WsOptions``), ``parse`` (stream frames
-> messages, with ``messages``, ``rows`` (wire rows -> core types) and ``fields``) and
``streams`` (``PublicStream``/``PrivateStream``). The main names are re-exported here.
"""

from __future__ import annotations

from . import errors
from .errors import *  # noqa: F403 -- the whole error tree, listed once in errors.__all__
from .parse import ParseStats, parse_message
from .rest import BybitRest, Credentials, RetryPolicy
from .streams import PrivateStream, PublicStream, open_private_stream, open_public_stream
from .ws import Connected, Disconnected, WsConnection, WsOptions, WsPolicy, open_ws

__all__ = [
    "BybitRest",
    "Connected",
    "Credentials",
    "Disconnected",
    "ParseStats",
    "PrivateStream",
    "PublicStream",
    "RetryPolicy",
    "WsConnection",
    "WsOptions",
    "WsPolicy",
    "open_private_stream",
    "open_public_stream",
    "open_ws",
    "parse_message",
]
__all__ += errors.__all__
