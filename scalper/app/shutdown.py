"""Shutdown requests: the first one is graceful, the second one is immediate.

A graceful shutdown is a trading action, not just a cancel: the bot stops new entries,
cancels its working orders, closes its position if configured, and flushes the journal
before the nursery is cancelled. So a signal does not cancel anything by itself; it
sets ``requested`` and the bot runs its shutdown sequence. Only a second signal (the
operator insisting) cancels the whole tree at once.
"""

from __future__ import annotations

import signal

import trio
from loguru import logger

__all__ = ["ShutdownRequest", "watch_signals"]


class ShutdownRequest:
    """A one-way latch with a reason, plus a count for "second signal = now"."""

    def __init__(self) -> None:
        self.requested = trio.Event()
        self.reason = ""
        self.count = 0

    def request(self, reason: str) -> None:
        """Ask for a graceful shutdown (idempotent: the first reason is kept)."""
        self.count += 1
        if not self.requested.is_set():
            self.reason = reason
            self.requested.set()


async def watch_signals(
    shutdown: ShutdownRequest,
    hard_stop: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Turn SIGINT/SIGTERM into shutdown requests; the second one cancels ``hard_stop``."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            shutdown.request(f"signal {name}")
            if shutdown.count == 1:
                logger.warning("{} received: shutting down gracefully (again to exit now)", name)
            else:
                logger.warning("{} received again: exiting now", name)
                hard_stop.cancel()
