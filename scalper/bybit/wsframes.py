"""Cutting a WebSocket client's incoming bytes into frames, with a fast lane for data.

Why: on the public stream nearly every frame is a final, unmasked text frame of a few
hundred bytes, and wsproto's general parser (a generator per frame, an incremental
UTF-8 decoder per message, an event object per frame) cost more CPU per frame than
decoding the JSON and applying it to the book. At a steady market rate each frame comes
in its own socket read, so that cost is paid on every wake-up of the bot.

``FrameSplitter`` reads just the frame header. A frame that is final, unmasked, a text
or binary message with no RSV bit set, uses the shortest length encoding, is not inside
a fragmented message and (for text) is valid UTF-8, becomes a message at once. Every
other frame (pings, close, fragments and their continuations, anything malformed) is
handed back *whole* and in order, for wsproto to handle exactly as before: wsproto thus
only ever sees complete frames and is always at a frame boundary between them.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FrameSplitter", "FrameTooLarge"]

_TEXT = 0x81  # FIN + text opcode, no RSV bits
_BINARY = 0x82  # FIN + binary opcode
_MASKED = 0x80
_PLAIN = (_TEXT, _BINARY)


class FrameTooLarge(OSError):
    """A frame announced a payload larger than the connection allows."""


class FrameSplitter:
    """Holds the bytes of an incomplete frame between socket reads."""

    __slots__ = ("_buffer", "_fragmented", "_max")

    def __init__(self, max_size: int) -> None:
        self._max = max_size
        self._buffer = b""
        #: a fragmented data message is open: its frames (and all data) go to wsproto
        self._fragmented = False

    def feed(self, data: bytes) -> None:
        """Append bytes read from the socket."""
        self._buffer = self._buffer + data if self._buffer else data

    def split(self, messages: deque[str | bytes], data: bytes = b"") -> bytes | None:
        """Append every fast-lane message to ``messages`` up to the next frame that
        needs wsproto; return that frame whole, or None once no complete frame is left.
        ``data``: bytes just read, fed first (one call per read instead of two)."""
        buf = self._buffer + data if self._buffer else data
        size = len(buf)
        pos = 0
        slow: bytes | None = None
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            minimal = True
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
                minimal = length >= 126
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
                minimal = 65536 <= length < 2**63
            if b1 & _MASKED:
                head += 4
            if length > self._max:
                raise FrameTooLarge(f"message larger than {self._max} bytes")
            end = pos + head + length
            if end > size:
                break
            if b0 in _PLAIN and minimal and not b1 & _MASKED and not self._fragmented:
                payload = buf[pos + head : end]
                if b0 == _BINARY:
                    messages.append(payload)
                    pos = end
                    continue
                try:
                    messages.append(payload.decode())
                    pos = end
                    continue
                except UnicodeDecodeError:
                    pass  # wsproto closes the connection with its reason
            self._track_fragments(b0)
            slow = buf[pos:end]
            pos = end
            break
        self._buffer = buf[pos:] if pos else buf
        return slow

    def _track_fragments(self, b0: int) -> None:
        opcode = b0 & 0x0F
        final = bool(b0 & 0x80)
        if opcode in (1, 2) and not final:
            self._fragmented = True
        elif opcode == 0 and final:
            self._fragmented = False
