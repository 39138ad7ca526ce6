"""The clock the frame server stamps frames with, shared with the clients that read it.

Its own module so that the clients (``bench.loopback``) need not import the server,
which runs as ``python -m scalper.bench.server`` and must not be imported by its own
package first.
"""

from __future__ import annotations

import time

__all__ = ["STAMP_BASE", "stamp_us"]

#: stamps are this plus CLOCK_MONOTONIC in microseconds: a fixed width of 16 digits
STAMP_BASE = 10**15


def stamp_us() -> int:
    """Now, as the server stamps frames (comparable across processes)."""
    return STAMP_BASE + time.monotonic_ns() // 1000
