"""Sending on a lossless control channel: never dropped, never silently stuck.

Control traffic (order commands, outcomes, positions, switches, resyncs) is awaited,
not try-sent. Its channels are sized so that a full one means a consumer is stuck or
far too slow: a bug. So a full channel is logged loudly before the send waits,
instead of blocking without a word.
"""

from __future__ import annotations

from typing import TypeVar

import trio
from loguru import logger

__all__ = ["send_control"]

T = TypeVar("T")


async def send_control(send: trio.MemorySendChannel[T], item: T, channel: str) -> None:
    """Send ``item``; if ``channel`` is full, log an error naming it, then wait."""
    try:
        send.send_nowait(item)
    except trio.WouldBlock:
        stats = send.statistics()
        logger.error(
            "{} channel full ({} queued): waiting for its consumer (this is a bug)",
            channel,
            stats.current_buffer_used,
        )
        await send.send(item)
