"""Bybit v5 REST client: typed endpoints over signed, paced, retried requests.

``BybitRest`` is the facade the app calls; it owns no connection: the caller injects an
``httpx.AsyncClient`` whose ``base_url`` points at Bybit (or the simulator), and a test
swaps in ``httpx.MockTransport``. The work is split by responsibility:

* ``transport.py`` (``Transport``): one signed attempt -- a GET's query string built
  once, a POST's JSON serialized once, signed with a fresh timestamp
  (``clock() + offset``) and sent as those exact bytes; the envelope parsed and mapped
  to the error tree, Bybit's text redacted. The one place network access happens.
* ``pacing.py`` (``Pacer``): a client-side sliding window on order
  create/amend/cancel/cancel-all/set-leverage (10/s each, Bybit's default), and a wait
  for the reset of any path whose last ``X-Bapi-Limit-Status`` says it is (nearly)
  exhausted.
* ``retry.py`` (``Retrier``, ``RetryPolicy``): everything but order create retries what
  ``errors`` marks retryable, with backoff and jitter, within ``max_attempts`` and one
  deadline; 10006 waits for its reset, 10002 re-syncs the clock (``sync_clock``).
  Cancel/amend/set-leverage are safe to repeat.
* ``orders.py`` (``OrderCreator``): an order create is never repeated blindly; an
  unknown outcome or a 110072 is resolved by reading the order by ``orderLinkId``, and
  once a create may have executed, ending unconfirmed is ``AmbiguousOutcome``.
* ``market.py``, ``account.py``, ``trading.py``: the typed endpoints (query parameters
  in, core types out, via ``rows``), grouped as Bybit groups them, on the shared
  plumbing of ``endpoints.py`` (the retried call, paging, skipping bad rows).
* this module: the facade that wires those parts together, the clock offset, and the
  public re-exports.

Secrets: the key and secret live in ``Credentials`` (masked ``repr``); log lines and
errors carry the path, retCode and orderLinkId, never headers, key, secret or signature.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import httpx
import trio
from loguru import logger

# Credentials and wall_clock_ms live in auth; re-exported here (see __all__) because
# scalper.app and scalper.replay import them from this module.
from .account import AccountCalls
from .auth import Credentials, wall_clock_ms
from .fields import ParseStats
from .market import MarketReads
from .orders import OrderCreator, OrderRef, order_body
from .pacing import DEFAULT_PATH_LIMITS, Pacer, RateLimitState
from .retry import Retrier, RetryPolicy
from .trading import OrderCalls
from .transport import Transport, encode_json

__all__ = [
    "BybitRest",
    "Credentials",
    "OrderRef",
    "RateLimitState",
    "RetryPolicy",
    "wall_clock_ms",
]

#: the default policy (frozen: one shared instance is safe)
DEFAULT_RETRY: Final = RetryPolicy()


class BybitRest(MarketReads, AccountCalls, OrderCalls):
    """Typed, signed, retrying client for the Bybit v5 REST endpoints the bot uses.

    Call ``await sync_clock()`` once at start (and it is re-run on every 10002).
    ``credentials`` may be None for public market data only.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: Credentials | None = None,
        *,
        recv_window_ms: int = 5000,
        clock: Callable[[], float] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        retry: RetryPolicy = DEFAULT_RETRY,
        path_limits: Mapping[str, int] = DEFAULT_PATH_LIMITS,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._creds = credentials
        self._clock = clock
        self.retry = retry
        rng = rng or random.Random()
        #: exchange time minus local clock, ms (from the last sync)
        self.clock_offset_ms = 0
        self.parse_stats = ParseStats(name="rest")
        #: order creates actually put on the wire (evidence for the idempotency tests)
        self.create_sends = 0
        # The parts read self.retry and self.now_ms() at each use (through these
        # callables), so a new policy or a re-synced clock applies at once.
        self._pacer = Pacer(path_limits, now_ms=self.now_ms, sleep=sleep)
        self._transport = Transport(
            client,
            credentials,
            recv_window_ms=recv_window_ms,
            now_ms=self.now_ms,
            track_limits=self._pacer.track,
        )
        self._retrier = Retrier(
            self._transport,
            self._pacer,
            policy=self._policy,
            now_ms=self.now_ms,
            sleep=sleep,
            rng=rng,
            resync=self._resync,
        )
        self._creator = OrderCreator(
            self._transport,
            self._retrier,
            policy=self._policy,
            sleep=sleep,
            rng=rng,
            read_order=self.order,
            on_send=self._count_create,
        )

    @property
    def rate_limits(self) -> dict[str, RateLimitState]:
        """Last rate-limit headers per path (kept by the pacer)."""
        return self._pacer.rate_limits

    @rate_limits.setter
    def rate_limits(self, value: dict[str, RateLimitState]) -> None:
        self._pacer.rate_limits = value

    def __repr__(self) -> str:
        return f"BybitRest(base_url={str(self._client.base_url)!r}, credentials={self._creds!r})"

    # ------------------------------------------------------------ time

    def now_ms(self) -> int:
        """Our best estimate of the exchange's clock, ms."""
        return int(self._clock()) + self.clock_offset_ms

    async def sync_clock(self, *, deadline: float | None = None) -> int:
        """Measure and keep the exchange-minus-local clock offset; returns it (ms)."""
        before = self._clock()
        server = await self.server_time_ms(deadline=deadline)
        after = self._clock()
        self.clock_offset_ms = int(server - (before + after) / 2)
        logger.bind(offset_ms=self.clock_offset_ms).info(
            "exchange clock offset {} ms", self.clock_offset_ms
        )
        return self.clock_offset_ms

    # ------------------------------------------------------------ plumbing

    #: the create body and its exact JSON bytes (kept here for the wire-format tests)
    _order_body = staticmethod(order_body)
    _json = staticmethod(encode_json)

    def _policy(self) -> RetryPolicy:
        """The current policy: ``retry`` is a public attribute a caller may replace."""
        return self.retry

    async def _resync(self, deadline: float) -> None:
        """Re-measure the clock offset after a 10002, within the failing call's deadline."""
        await self.sync_clock(deadline=deadline)

    def _count_create(self) -> None:
        """Count one order create put on the wire (``create_sends``)."""
        self.create_sends += 1
