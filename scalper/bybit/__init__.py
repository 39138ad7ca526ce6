"""The client side of Bybit's v5 wire format: signing, REST, WebSockets, parsing.

``errors`` (the error tree), ``auth`` (signing), ``rest`` (``BybitRest``, the REST
facade over ``transport`` (one signed attempt), ``pacing`` (rate limits), ``retry``
(retry loop and ``RetryPolicy``) and ``orders`` (idempotent order create)), ``ws``
(``WsConnection``/``open_ws``, the trio driver around the sans-IO ``wsprotocol`` and
``reconnect``, configured by one ``WsOptions``), ``parse`` (wire JSON -> core types)
and ``streams`` (``PublicStream``/``PrivateStream``). The main names are re-exported here.
"""

from __future__ import annotations

from .errors import (
    AmbiguousOutcome,
    AuthError,
    BybitError,
    DuplicateOrder,
    ExchangeError,
    HTTPStatusError,
    InsufficientBalance,
    InvalidRequest,
    NetworkError,
    NotModified,
    OrderAlreadyFinal,
    OrderNotFound,
    ProtocolError,
    RateLimited,
    ReduceOnlyRejected,
    RequestTimeout,
    ServerBusy,
    StreamAuthError,
    StreamError,
    TimestampError,
    TransportError,
)
from .parse import ParseStats, parse_message
from .rest import BybitRest, Credentials, RetryPolicy
from .streams import PrivateStream, PublicStream, open_private_stream, open_public_stream
from .ws import Connected, Disconnected, WsConnection, WsOptions, WsPolicy, open_ws

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "BybitError",
    "BybitRest",
    "Connected",
    "Credentials",
    "Disconnected",
    "DuplicateOrder",
    "ExchangeError",
    "HTTPStatusError",
    "InsufficientBalance",
    "InvalidRequest",
    "NetworkError",
    "NotModified",
    "OrderAlreadyFinal",
    "OrderNotFound",
    "ParseStats",
    "PrivateStream",
    "ProtocolError",
    "PublicStream",
    "RateLimited",
    "ReduceOnlyRejected",
    "RequestTimeout",
    "RetryPolicy",
    "ServerBusy",
    "StreamAuthError",
    "StreamError",
    "TimestampError",
    "TransportError",
    "WsConnection",
    "WsOptions",
    "WsPolicy",
    "open_private_stream",
    "open_public_stream",
    "open_ws",
    "parse_message",
]
