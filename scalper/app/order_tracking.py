"""What is under way in execution: order pushes awaited, creates in flight, operations.

Three small trackers the execution lanes share, kept apart from the exchange calls so
each says in one place what it remembers and when it forgets: ``OrderWatch`` routes a
private-stream push to the confirmation waiting for that order, ``Creates`` lets a
cancel that overtook its create tell, and ``InFlight`` lets a shutdown wait until no
order operation is half done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import trio

from ..core.model import OrderUpdate

__all__ = ["Creates", "InFlight", "OrderWatch"]

#: a full per-order push channel only loses pushes the REST poll will see anyway
_WATCH_BUFFER = 64


class OrderWatch:
    """Routes private-stream order pushes to the confirmation waiting for that order."""

    def __init__(self) -> None:
        self._waiters: dict[str, trio.MemorySendChannel[OrderUpdate]] = {}

    def push(self, update: OrderUpdate) -> None:
        """Deliver a push (from the private stream task); unknown orders are ignored."""
        send = self._waiters.get(update.order_link_id)
        if send is not None:
            # the REST poll covers whatever the stream could not deliver
            with suppress(trio.WouldBlock, trio.BrokenResourceError):
                send.send_nowait(update)

    @contextmanager
    def watch(self, order_link_id: str) -> Iterator[trio.MemoryReceiveChannel[OrderUpdate]]:
        """Receive pushes for one order while the ``with`` block runs."""
        send, receive = trio.open_memory_channel[OrderUpdate](_WATCH_BUFFER)
        self._waiters[order_link_id] = send
        try:
            yield receive
        finally:
            del self._waiters[order_link_id]
            send.close()


class Creates:
    """The creates under way, so a cancel that overtook its create can tell.

    Bybit answers 110001 ("order not exists") to a cancel that reaches it before the
    create it is about: the cancel must then wait for the create to end and try again,
    or a PostOnly entry the engine let go rests on the book until its timeout.
    """

    def __init__(self) -> None:
        self._ended: dict[str, trio.Event] = {}
        #: True: accepted; False: refused (it does not exist); None: unknown
        self._placed: dict[str, bool | None] = {}

    @contextmanager
    def creating(self, order_link_id: str) -> Iterator[None]:
        """Mark the block as the create of ``order_link_id``."""
        ended = trio.Event()
        self._ended[order_link_id] = ended
        self._placed[order_link_id] = None
        try:
            yield
        finally:
            ended.set()

    def placed(self, order_link_id: str, placed: bool | None) -> None:
        """Record what the create call said (True accepted, False refused)."""
        self._placed[order_link_id] = placed

    def refused(self, order_link_id: str) -> bool:
        """True when its create was refused outright: the order never existed."""
        return self._placed.get(order_link_id) is False

    def known(self, order_link_id: str) -> bool:
        """True while this execution placed ``order_link_id`` and its end is not reported."""
        return order_link_id in self._ended

    def finished(self, order_link_id: str) -> None:
        """The order's end was reported: forget it."""
        self._ended.pop(order_link_id, None)
        self._placed.pop(order_link_id, None)

    async def wait_ended(self, order_link_id: str) -> None:
        """Return once no create of ``order_link_id`` is under way."""
        ended = self._ended.get(order_link_id)
        if ended is not None:
            await ended.wait()


class InFlight:
    """Counts order operations under way, so a shutdown can wait for them to end.

    Cancelling the execution task in the middle of a create could leave an order
    landing on the exchange after the final sweep; the bot waits for ``idle`` first.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = trio.Event()
        self._idle.set()

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count the block as one operation in flight."""
        if self.count == 0:
            self._idle = trio.Event()
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return once nothing is in flight."""
        while self.count:
            await self._idle.wait()
