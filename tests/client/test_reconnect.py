"""The reconnect rule as lists: attempt outcomes in, delays and verdicts out.

The jitter's source is injected: ``Jitter`` returns chosen fractions of the U(0.5, 1)
range, so every delay is asserted exactly.
"""

from __future__ import annotations

import random

import attrs
import pytest

from scalper.bybit.reconnect import Attempt, GiveUp, Reconnect, Retry, Verdict
from scalper.bybit.wstypes import WsPolicy

POLICY = WsPolicy(
    backoff_base_s=0.5,
    backoff_max_s=8.0,
    healthy_after_s=60.0,
    max_initial_failures=5,
    max_failures=None,
    max_auth_failures=3,
)
FAILED = Attempt(ready=False)
SHORT = Attempt(ready=True, lived_s=10.0)  # was ready, but not for long
HEALTHY = Attempt(ready=True, lived_s=60.0)
REFUSED = Attempt(ready=False, auth_refused=True)


class Jitter(random.Random):
    """``uniform(a, b)`` at the fractions given (0: ``a``, 1: ``b``), then at ``b``."""

    def __init__(self, *fractions: float) -> None:
        super().__init__(0)
        self.fractions = list(fractions)
        self.calls = 0

    def uniform(self, a: float, b: float) -> float:
        self.calls += 1
        f = self.fractions.pop(0) if self.fractions else 1.0
        return a + (b - a) * f


def run(rule: Reconnect, attempts: list[Attempt]) -> list[Retry | GiveUp]:
    return [rule.ended(a) for a in attempts]


def test_backoff_doubles_to_the_cap_and_jitter_scales_it() -> None:
    rule = Reconnect(attrs.evolve(POLICY, max_initial_failures=None), Jitter(1, 1, 0, 1, 1, 1, 1))
    delays = [d.delay_s for d in run(rule, [FAILED] * 7) if isinstance(d, Retry)]
    assert delays == [0.5, 1.0, 1.0, 4.0, 8.0, 8.0, 8.0]  # the third at half: jitter's floor
    assert rule.failures == 7


def test_a_healthy_connection_resets_the_backoff_a_short_one_does_not() -> None:
    rule = Reconnect(POLICY, Jitter())
    out = run(rule, [FAILED, FAILED, SHORT, SHORT, HEALTHY, FAILED])
    assert out == [
        Retry(0.5, 1),
        Retry(1.0, 2),
        Retry(2.0, 3),
        Retry(4.0, 4),
        Retry(0.5, 0),  # stayed up for healthy_after_s: back to the shortest wait
        Retry(0.5, 1),
    ]


def test_the_first_connection_gives_up_after_max_initial_failures() -> None:
    rule = Reconnect(POLICY, Jitter())
    out = run(rule, [FAILED] * 5)
    assert out[:4] == [Retry(0.5, 1), Retry(1.0, 2), Retry(2.0, 3), Retry(4.0, 4)]
    assert out[4] == GiveUp(Verdict.NEVER_CONNECTED, 5)


def test_after_a_first_success_it_retries_forever_by_default() -> None:
    rule = Reconnect(POLICY, Jitter())
    out = run(rule, [SHORT] + [FAILED] * 100)
    assert all(isinstance(d, Retry) for d in out)
    assert out[-1] == Retry(8.0, 101)


def test_after_a_first_success_max_failures_ends_it() -> None:
    rule = Reconnect(attrs.evolve(POLICY, max_failures=3), Jitter())
    out = run(rule, [HEALTHY, FAILED, FAILED, FAILED])
    assert out == [
        Retry(0.5, 0),
        Retry(0.5, 1),
        Retry(1.0, 2),
        GiveUp(Verdict.TOO_MANY_FAILURES, 3),
    ]


def test_refused_auth_gives_up_after_three_in_a_row_without_drawing_jitter() -> None:
    jitter = Jitter()
    rule = Reconnect(POLICY, jitter)
    out = run(rule, [REFUSED, REFUSED, REFUSED])
    assert out == [Retry(0.5, 1), Retry(1.0, 2), GiveUp(Verdict.AUTH_REFUSED, 3)]
    assert jitter.calls == 2


def test_a_ready_connection_resets_the_refused_auth_count() -> None:
    rule = Reconnect(attrs.evolve(POLICY, max_initial_failures=None), Jitter())
    out = run(rule, [REFUSED, REFUSED, SHORT, REFUSED, REFUSED])
    assert not any(isinstance(d, GiveUp) for d in out)
    assert (rule.auth_failures, rule.failures) == (2, 5)
    assert isinstance(rule.ended(REFUSED), GiveUp)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_seeded_rng_stays_within_half_and_full_delay(seed: int) -> None:
    rule = Reconnect(attrs.evolve(POLICY, max_initial_failures=None), random.Random(seed))
    for n, decision in enumerate(run(rule, [FAILED] * 8), start=1):
        assert isinstance(decision, Retry)
        nominal = min(8.0, 0.5 * 2 ** (n - 1))
        assert nominal / 2 <= decision.delay_s <= nominal
