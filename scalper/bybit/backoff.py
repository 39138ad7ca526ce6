"""Exponential backoff with jitter, shared by the REST retries and WebSocket reconnects.

One formula for both, so "never a tight loop, never a thundering herd" holds the same
way everywhere: ``base * 2^(n-1)``, capped at ``cap``, times U(0.5, 1).
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait before retry number ``attempt`` (1 = the first retry), in seconds.

    The jitter keeps half the delay fixed (a floor against tight loops) and spreads the
    other half, so many clients that failed together do not retry together.
    """
    raw: float = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return raw * rng.uniform(0.5, 1.0)
