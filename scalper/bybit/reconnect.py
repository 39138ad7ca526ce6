"""When to reconnect a dropped WebSocket stream, and when to give up: a pure rule.

Why a module of its own: these few numbers decide whether a bot rides out an exchange
outage, fails fast on a wrong URL, or hammers Bybit with a bad key until the IP is
banned. As a plain object that is told how each attempt ended and answers with a delay
or a verdict, the rule is tested with lists of outcomes, no clock and no socket.

The rule:

* After each attempt, wait ``backoff_delay(failures)``: ``backoff_base_s`` doubling up to
  ``backoff_max_s``, times U(0.5, 1) from the injected ``rng``.
* ``failures`` counts attempts in a row that did not end a healthy connection; one that
  stayed ready for ``healthy_after_s`` resets it to 0 (the next wait is the shortest).
* Until a first connection was ready, ``max_initial_failures`` failures end the stream
  (a URL that never worked is most likely wrong); after that ``max_failures`` (None:
  never give up).
* An attempt whose auth Bybit refused counts as a failure too, and
  ``max_auth_failures`` refusals in a row end the stream (a clock skew can heal, a bad
  key does not); a ready connection resets that count.
"""

from __future__ import annotations

import enum
import random

import attrs

from .backoff import backoff_delay
from .wstypes import WsPolicy

__all__ = ["Attempt", "GiveUp", "Reconnect", "Retry", "Verdict"]


@attrs.frozen(kw_only=True)
class Attempt:
    """How one connection attempt ended."""

    #: it became ready (authenticated if private, subscriptions sent)
    ready: bool
    #: seconds it stayed ready (only read when ``ready``)
    lived_s: float = 0.0
    #: Bybit refused our auth on it
    auth_refused: bool = False


@attrs.frozen
class Retry:
    """Connect again after ``delay_s``; ``failures`` in a row so far."""

    delay_s: float
    failures: int


class Verdict(enum.Enum):
    """Why a stream gave up."""

    #: ``max_initial_failures`` attempts and not one connection was ever ready
    NEVER_CONNECTED = "never connected"
    #: ``max_failures`` attempts in a row failed after an earlier success
    TOO_MANY_FAILURES = "too many failures"
    #: ``max_auth_failures`` refused auths in a row
    AUTH_REFUSED = "auth refused"


@attrs.frozen
class GiveUp:
    """Stop the stream: ``verdict`` says why, after ``failures`` failures in a row."""

    verdict: Verdict
    failures: int


@attrs.define(eq=False)
class Reconnect:
    """The reconnect rule's state for one stream; ``ended`` after every attempt."""

    policy: WsPolicy
    rng: random.Random = attrs.field(factory=random.Random)
    #: attempts in a row that did not end a healthy connection
    failures: int = attrs.field(default=0, init=False)
    #: refused auths in a row
    auth_failures: int = attrs.field(default=0, init=False)
    #: a connection has been ready at least once
    connected: bool = attrs.field(default=False, init=False)

    def ended(self, attempt: Attempt) -> Retry | GiveUp:
        """Take one attempt's outcome; say how long to wait, or that it is over."""
        p = self.policy
        if attempt.auth_refused:
            self.auth_failures += 1
        if attempt.ready:
            self.auth_failures = 0
            self.connected = True
        healthy = attempt.ready and attempt.lived_s >= p.healthy_after_s
        self.failures = 0 if healthy else self.failures + 1
        if attempt.auth_refused and self.auth_failures >= p.max_auth_failures:
            return GiveUp(Verdict.AUTH_REFUSED, self.failures)
        limit = p.max_failures if self.connected else p.max_initial_failures
        if limit is not None and self.failures >= limit:
            verdict = Verdict.TOO_MANY_FAILURES if self.connected else Verdict.NEVER_CONNECTED
            return GiveUp(verdict, self.failures)
        delay = backoff_delay(self.failures, p.backoff_base_s, p.backoff_max_s, self.rng)
        return Retry(delay, self.failures)
