"""``RetryPolicy`` refuses a bound that would make the retry loop meaningless."""

from __future__ import annotations

import pytest

from scalper.bybit.retry import RetryPolicy


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1, got 0"),
        ({"total_budget_s": 0}, "total_budget_s must be > 0, got 0"),
        ({"base_delay_s": -1.0}, "base_delay_s must be >= 0, got -1.0"),
    ],
)
def test_a_bound_out_of_range_is_refused(changes: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}$"):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_zero_waits_are_allowed() -> None:
    policy = RetryPolicy(base_delay_s=0, max_delay_s=0, settle_delay_s=0, max_rate_limit_wait_s=0)
    assert (policy.base_delay_s, policy.max_attempts) == (0, 5)
