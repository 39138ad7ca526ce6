"""Notices: the bot's notifications, fanned out to consumers that may be slow.

A notice is one human line saying what happened (start, stop, entry, exit, halt, an
``ALERT`` log line, a silent market stream, a day's loss near its limit). Consumers
(Telegram, the dashboard) read them from bounded drop-oldest queues, so a slow
consumer (Telegram down) costs nothing but dropped, counted notices, and publishing
never waits: it runs beside the trading path, never inside it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio
from loguru import logger

__all__ = ["RECENT_NOTICES", "Notice", "NoticeQueue", "Notifier"]

#: notices kept for the dashboard ("last alerts")
RECENT_NOTICES = 50


@attrs.frozen(kw_only=True)
class Notice:
    """One notification: what happened (``kind``), in one human line."""

    #: start | stop | entry | exit | halt | alert | stream | loss
    kind: str
    text: str
    ts_ms: int


class NoticeQueue:
    """A bounded queue for one consumer: when full, the oldest notice is dropped."""

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self._items: deque[Notice] = deque()
        self._maxlen = maxlen
        self._ready = trio.Event()
        #: notices dropped because the consumer was behind
        self.dropped = 0

    def put(self, notice: Notice) -> None:
        """Queue ``notice`` without ever waiting (drop the oldest when full)."""
        if len(self._items) >= self._maxlen:
            self._items.popleft()
            self.dropped += 1
        self._items.append(notice)
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    async def get_all(self) -> list[Notice]:
        """Wait for at least one notice; take everything queued (a burst, coalesced)."""
        while not self._items:
            await self._ready.wait()
            self._ready = trio.Event()
        items = list(self._items)
        self._items.clear()
        return items


@attrs.define(eq=False)
class Notifier:
    """Fans notices out to the consumers' queues and keeps the latest for the dashboard."""

    _clock_ms: Callable[[], int]
    _queues: list[NoticeQueue] = attrs.field(init=False, factory=list)
    recent: deque[Notice] = attrs.field(init=False, factory=lambda: deque(maxlen=RECENT_NOTICES))
    _sink: int | None = attrs.field(init=False, default=None)

    @property
    def dropped(self) -> int:
        """Notices dropped by every consumer queue so far."""
        return sum(queue.dropped for queue in self._queues)

    def subscribe(self, maxlen: int = 100) -> NoticeQueue:
        """A new consumer queue receiving every notice from now on."""
        queue = NoticeQueue(maxlen)
        self._queues.append(queue)
        return queue

    def publish(self, kind: str, text: str) -> None:
        """Send a notice to every consumer. Never waits, never raises for a consumer."""
        notice = Notice(kind=kind, text=text, ts_ms=int(self._clock_ms()))
        self.recent.append(notice)
        for queue in self._queues:
            queue.put(notice)

    def capture_alerts(self) -> None:
        """From now on, every ``ALERT:`` log line (from any task) becomes a notice.

        A loguru sink, so ALERT lines need no second code path. Lines logged outside
        the trio thread (a worker thread) are skipped: the queues are not thread-safe.
        ``release_alerts`` removes the sink.
        """
        if self._sink is not None:
            return

        def sink(message: Any) -> None:
            text: str = message.record["message"]
            if not text.startswith("ALERT: "):
                return
            try:
                trio.lowlevel.current_task()
            except RuntimeError:
                return
            body = text[len("ALERT: ") :]
            if body.startswith("halted: "):
                return  # the halt notice says it, with its cause
            self.publish("alert", body)

        self._sink = logger.add(sink, level="WARNING", format="{message}", catch=True)

    def release_alerts(self) -> None:
        """Stop turning ALERT lines into notices (idempotent)."""
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None
