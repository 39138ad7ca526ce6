"""Retrying a REST call that is safe to repeat, within one deadline.

``Retrier.call`` is used for reads and for writes that are safe to repeat (cancel,
amend, set-leverage); never for an order create (``orders.py`` resolves those by
reading). It retries what ``errors`` marks retryable -- network errors, timeouts,
5xx/429, 10000/10016 -- with exponential backoff and jitter (``backoff.py``), bounded by
``RetryPolicy.max_attempts`` and ``total_budget_s``. A 10006 waits until its
``X-Bapi-Limit-Reset-Timestamp`` (bounded by ``max_rate_limit_wait_s``); a 10002
re-syncs the clock offset (the injected ``resync``) and retries at once.

The deadline covers pacing, sends and backoffs: no wait starts that would end after
it, and running out before a send is ``RequestTimeout``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio
from loguru import logger

from ..core.rules import int_field, number_field
from .backoff import backoff_delay
from .errors import BybitError, NotModified, RateLimited, RequestTimeout, TimestampError
from .pacing import Pacer
from .transport import Transport, encode_json, encode_query

__all__ = ["Retrier", "RetryPolicy"]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Bounds on retrying one call (a bound out of range is refused when it is made)."""

    #: sends per call, first try included
    max_attempts: int = int_field(5, ge=1)
    #: first backoff delay; doubles per attempt, with jitter in [50 %, 100 %]
    base_delay_s: float = number_field(0.2, ge=0)
    max_delay_s: float = number_field(5.0, ge=0)
    #: no new attempt starts after this much time since the call began
    total_budget_s: float = number_field(30.0, gt=0)
    #: longest wait for a 10006 / exhausted-limit reset
    max_rate_limit_wait_s: float = number_field(10.0, ge=0)
    #: pause before reading an order whose create had an unknown outcome, so a create
    #: still in flight on the server has landed
    settle_delay_s: float = number_field(0.3, ge=0)


@attrs.define(eq=False)
class Retrier:
    """The retry loop and the "how long before the next attempt" decision.

    ``policy()`` is read at each use, so a caller may swap its policy between calls.
    ``resync(deadline)`` re-measures the clock offset after a 10002.
    """

    _transport: Transport
    _pacer: Pacer
    _policy: Callable[[], RetryPolicy] = attrs.field(kw_only=True)
    _now_ms: Callable[[], int] = attrs.field(kw_only=True)
    _sleep: Callable[[float], Awaitable[None]] = attrs.field(kw_only=True)
    _rng: random.Random = attrs.field(kw_only=True)
    _resync: Callable[[float], Awaitable[object]] = attrs.field(kw_only=True)

    async def pace(self, path: str, deadline: float) -> bool:
        """The pacer's wait for ``path`` under the current policy (False: out of time)."""
        return await self._pacer.pace(
            path, deadline, max_wait_s=self._policy().max_rate_limit_wait_s
        )

    async def retry_delay(self, exc: BybitError, attempt: int, deadline: float) -> float | None:
        """How long to wait before retrying after ``exc``; None means give up (raise)."""
        p = self._policy()
        if not exc.retryable or attempt >= p.max_attempts:
            return None
        delay: float
        if isinstance(exc, TimestampError):
            await self._resync(deadline)
            delay = 0.0
        elif isinstance(exc, RateLimited) and exc.reset_ms is not None:
            wait_ms = exc.reset_ms - self._now_ms()
            delay = min(p.max_rate_limit_wait_s, max(0.0, wait_ms / 1000.0)) + 0.01
        else:
            delay = backoff_delay(attempt, p.base_delay_s, p.max_delay_s, self._rng)
        if trio.current_time() + delay > deadline:
            return None
        return delay

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        signed: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried within the policy for retryable failures.

        Used for reads and for writes that are safe to repeat (cancel, amend, leverage);
        never for order create. ``deadline`` (trio time) is a caller's overall bound
        (e.g. place_order's read-back): the call never starts a send, a backoff or a
        pacing wait that would end after it. Running out before a send is
        ``RequestTimeout``.
        """
        if method == "GET":
            query, body = encode_query(params), ""
        else:
            query, body = "", encode_json(params)
        own = trio.current_time() + self._policy().total_budget_s
        deadline = own if deadline is None else min(deadline, own)
        last: BybitError | None = None
        attempt = 0
        while True:
            attempt += 1
            if not await self.pace(path, deadline):
                what = f"{method} {path}: retry budget used up before attempt {attempt}"
                raise RequestTimeout(what if last is None else f"{what}; last: {last}") from last
            try:
                result, _ = await self._transport.send(method, path, query, body, signed=signed)
            except BybitError as exc:
                last = exc
                delay = await self.retry_delay(exc, attempt, deadline)
                log = logger.bind(path=path, ret_code=getattr(exc, "ret_code", None))
                if delay is None:
                    # "already set" is an answer the callers take as success, not a failure
                    level = "DEBUG" if isinstance(exc, NotModified) else "WARNING"
                    log.log(
                        level, "{} {} failed after {} attempt(s): {}", method, path, attempt, exc
                    )
                    raise
                log.info(
                    "{} {} failed ({}); retry {} in {:.3f}s", method, path, exc, attempt, delay
                )
                await self._sleep(delay)
            else:
                return result
