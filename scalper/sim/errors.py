"""The simulator's one error type: a Bybit retCode with its message.

The venue raises ``VenueError(code, msg)`` for every refusal (bad parameter, unknown
order, insufficient balance...); the REST and WebSocket layers turn it into Bybit's
envelope. It never reaches a client as an HTTP 500.
"""

from __future__ import annotations

__all__ = ["VenueError"]


class VenueError(Exception):
    """A request refused with Bybit's ``retCode`` and ``retMsg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
