"""Staying under Bybit's rate limits: a client-side window, then the server's own counter.

Two layers, checked in this order before every send (``Pacer.pace``):

* a sliding-window limiter per order-entry path (10/s each, Bybit's default), in trio
  time so ``MockClock`` drives it;
* the last ``X-Bapi-Limit-Status`` / ``X-Bapi-Limit-Reset-Timestamp`` seen for the
  path (``Pacer.track`` records them from every reply): when it says the limit is
  (nearly) used up, wait for its reset first.

Pacing spends the caller's deadline like any other wait: ``pace`` returns False instead
of waiting past it. The pacer sends nothing and owns no connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import attrs
import httpx
import trio
from loguru import logger

from .paths import (
    ORDER_AMEND,
    ORDER_CANCEL,
    ORDER_CANCEL_ALL,
    ORDER_CREATE,
    SET_LEVERAGE,
    TRADING_STOP,
)

__all__ = ["DEFAULT_PATH_LIMITS", "Pacer", "RateLimitState", "WindowLimiter"]

#: Client-side caps (requests per second) for Bybit's 10/s order-entry endpoints.
DEFAULT_PATH_LIMITS: Final[Mapping[str, int]] = {
    ORDER_CREATE: 10,
    ORDER_AMEND: 10,
    ORDER_CANCEL: 10,
    ORDER_CANCEL_ALL: 10,
    SET_LEVERAGE: 10,
    TRADING_STOP: 10,
}


@attrs.frozen
class RateLimitState:
    """The last rate-limit headers seen for one path."""

    limit: int | None
    remaining: int | None
    reset_ms: int | None


class WindowLimiter:
    """At most ``rate`` sends per rolling second (trio time, so MockClock drives it)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._sent: deque[float] = deque()
        self._lock = trio.Lock()

    async def acquire(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Wait (with ``sleep``) until one more send fits in the window, and count it."""
        async with self._lock:
            while True:
                now = trio.current_time()
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if len(self._sent) < self._rate:
                    self._sent.append(now)
                    return
                await sleep(1.0 - (now - self._sent[0]) + 1e-3)


class Pacer:
    """Both pacing layers for one client; ``rate_limits`` is the header state per path.

    ``now_ms`` is the exchange-clock estimate (reset timestamps are exchange time);
    ``sleep`` is injected so tests drive it with MockClock.
    """

    def __init__(
        self,
        path_limits: Mapping[str, int],
        *,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._limiters = {path: WindowLimiter(rate) for path, rate in path_limits.items()}
        self._now_ms = now_ms
        self._sleep = sleep
        #: last rate-limit headers per path
        self.rate_limits: dict[str, RateLimitState] = {}

    async def pace(self, path: str, deadline: float, *, max_wait_s: float) -> bool:
        """Stay under the limits: the client-side window, then the server's own counter.

        False (nothing waited past it) when the wait would not end before ``deadline``:
        pacing spends the caller's budget like any other wait. A reset further away
        than ``max_wait_s`` is waited for only that long.
        """
        if trio.current_time() >= deadline:
            return False
        limiter = self._limiters.get(path)
        if limiter is not None:
            with trio.move_on_at(deadline) as scope:
                await limiter.acquire(self._sleep)
            if scope.cancelled_caught:
                return False
        state = self.rate_limits.get(path)
        if state is None or state.remaining is None or state.reset_ms is None:
            return True
        if state.remaining <= 1:
            wait_s = (state.reset_ms - self._now_ms()) / 1000.0
            if wait_s > 0:
                wait_s = min(wait_s, max_wait_s)
                if trio.current_time() + wait_s >= deadline:
                    return False
                logger.bind(path=path).info(
                    "rate limit nearly used up on {} ({} left): waiting {:.3f}s",
                    path,
                    state.remaining,
                    wait_s,
                )
                await self._sleep(wait_s)
            # the window has rolled over (or will have): do not wait again on old headers
            self.rate_limits[path] = attrs.evolve(state, remaining=None)
        return True

    def track(self, path: str, headers: httpx.Headers) -> int | None:
        """Record a reply's rate-limit headers for ``path``; returns its reset timestamp
        (ms, exchange time), which a 10006 error carries so the retry waits for it."""

        def _int(name: str) -> int | None:
            v = headers.get(name)
            try:
                return int(v) if v is not None else None
            except ValueError:
                return None

        reset = _int("X-Bapi-Limit-Reset-Timestamp")
        remaining = _int("X-Bapi-Limit-Status")
        if remaining is not None or reset is not None:
            self.rate_limits[path] = RateLimitState(_int("X-Bapi-Limit"), remaining, reset)
        return reset
