"""Bybit v5 request signing (HMAC-SHA256), shared by the client and the simulator.

Both sides of the wire use these functions, and the reference test vectors pin them,
so a signing mistake cannot hide by being made the same way twice.

REST: ``sign(secret, timestamp + api_key + recv_window + payload)`` where the payload is
the exact query string sent (GET) or the exact JSON body bytes sent (POST).
WebSocket auth: ``sign(secret, "GET/realtime" + str(expires_ms))``.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["rest_signature", "sign", "ws_auth_signature"]


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
