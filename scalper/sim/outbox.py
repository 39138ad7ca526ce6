"""A WebSocket connection's outgoing queue: cheap to fill from sync code, drained by trio.

The market and the venue publish from plain (sync) code thousands of times a second; a
trio memory channel per message would cost a task switch each. Instead each connection
has a deque that publishers append to, and one writer task per connection drains it,
sleeping on a ``trio.Event`` only when it is empty. A consumer that falls more than
``limit`` messages behind is marked ``overflowed`` and its connection is closed (Bybit
drops slow consumers too), so memory stays bounded.
"""

from __future__ import annotations

from collections import deque

import attrs
import trio

__all__ = ["Outbox"]


@attrs.define(eq=False)  # identity: an outbox is kept in the hubs' sets
class Outbox:
    """Outgoing text frames of one WebSocket connection."""

    limit: int = 100_000
    queue: deque[str] = attrs.field(factory=deque, init=False)
    overflowed: bool = attrs.field(default=False, init=False)
    closed: bool = attrs.field(default=False, init=False)
    #: close code the writer sends once the queue is drained after ``close``
    close_code: int = attrs.field(default=1000, init=False)
    close_reason: str = attrs.field(default="", init=False)
    _event: trio.Event | None = attrs.field(default=None, init=False)

    def put(self, text: str) -> None:
        """Queue one frame (sync; never blocks)."""
        if self.closed:
            return
        if len(self.queue) >= self.limit:
            self.overflowed = True
            self.closed = True
            self.close_code = 1013
            self.close_reason = f"slow consumer: more than {self.limit} messages queued"
        else:
            self.queue.append(text)
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Stop accepting frames; the writer sends ``code`` and ``reason``, then exits."""
        if not self.closed:
            self.close_code = code
            self.close_reason = reason
        self.closed = True
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        """Sleep until a frame is queued or the outbox is closed."""
        if self.queue or self.closed:
            return
        event = self._event = trio.Event()
        await event.wait()
