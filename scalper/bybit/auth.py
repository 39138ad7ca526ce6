"""Bybit v5 request signing (HMAC-SHA256), shared by the client and the simulator.

Both sides of the wire use these functions, and the reference test vectors pin them,
so a signing mistake cannot hide by being made the same way twice.

REST: ``sign(secret, timestamp + api_key + recv_window + payload)`` where the payload is
the exact query string sent (GET) or the exact JSON body bytes sent (POST).
WebSocket auth: ``sign(secret, "GET/realtime" + str(expires_ms))``.

``redact`` cleans text that came back from Bybit before it goes into an error or a log
line: on a bad signature (10004) Bybit's ``retMsg`` echoes the signed string,
``origin_string[<ts><API key><recv><payload>]``.

``Credentials`` (the key pair, masked in ``repr``) and ``wall_clock_ms`` (the default
clock for timestamps) live here too, so the REST client and the WebSocket streams
share them without importing each other.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import attrs

__all__ = [
    "Credentials",
    "redact",
    "rest_signature",
    "sign",
    "wall_clock_ms",
    "ws_auth_signature",
]

#: Bybit's echo of the signed string; the payload may itself hold ``]``, so the match
#: runs to the end of the text.
_ORIGIN_STRING = re.compile(r"origin_string\[.*", re.DOTALL)


def wall_clock_ms() -> int:
    """The local wall clock in ms (the default clock for request timestamps)."""
    return int(time.time() * 1000)


def _mask_key(key: str) -> str:
    return repr(key[:3] + "***") if key else "''"


@attrs.frozen
class Credentials:
    """An API key pair. ``repr`` masks the key and omits the secret."""

    api_key: str = attrs.field(repr=_mask_key)
    api_secret: str = attrs.field(repr=False)


def sign(secret: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` keyed by ``secret``."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def rest_signature(
    secret: str, *, timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str
) -> str:
    """Signature of one REST request. ``payload`` is the query string or the JSON body."""
    return sign(secret, f"{timestamp_ms}{api_key}{recv_window_ms}{payload}")


def ws_auth_signature(secret: str, expires_ms: int) -> str:
    """Signature for the private WebSocket ``auth`` op."""
    return sign(secret, f"GET/realtime{expires_ms}")


def redact(text: str, *secrets: str) -> str:
    """``text`` without Bybit's ``origin_string[...]`` echo and with every non-empty
    ``secrets`` value masked: safe to put into an exception or a log line."""
    text = _ORIGIN_STRING.sub("origin_string[<redacted>]", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
