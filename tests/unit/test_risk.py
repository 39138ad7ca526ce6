"""Risk gate: position cap, order rate window, daily loss with unrealised, day reset, cooldown."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scalper.core.risk import DAY_MS, MINUTE_MS, RiskGate, RiskLimits

D = Decimal
T0 = 1_700_000_000_000  # an arbitrary UTC instant


def gate(**kw: object) -> RiskGate:
    base: dict[str, object] = {
        "max_position_usd": D(1000),
        "max_daily_loss_usd": D(50),
        "max_orders_per_minute": 3,
        "cooldown_ms": 2_000,
    }
    base.update(kw)
    return RiskGate(RiskLimits(**base))  # type: ignore[arg-type]


def test_fresh_gate_allows_an_entry() -> None:
    assert gate().allow_entry(D(1000), T0) is None


def test_notional_above_max_position_is_refused() -> None:
    reason = gate().allow_entry(D("1000.01"), T0)
    assert reason is not None and "max position" in reason


def test_order_rate_is_a_sliding_minute() -> None:
    g = gate()
    for i in range(3):
        g.record_order(T0 + i * 1000)
    reason = g.allow_entry(D(10), T0 + 2_000)
    assert reason is not None and "order rate" in reason
    assert g.orders_last_minute(T0 + MINUTE_MS - 1) == 3
    # the first order leaves the window exactly 60 s later
    assert g.orders_last_minute(T0 + MINUTE_MS) == 2
    assert g.allow_entry(D(10), T0 + MINUTE_MS) is None


def test_daily_loss_counts_realised_and_unrealised() -> None:
    g = gate()
    g.record_realised_pnl(D(-30), T0)
    assert g.daily_loss(T0) == D(30)
    assert g.allow_entry(D(10), T0, unrealised_pnl=D(-19)) is None
    assert not g.loss_limit_breached(T0, D("-19.99"))
    assert g.loss_limit_breached(T0, D(-20))
    reason = g.allow_entry(D(10), T0, unrealised_pnl=D(-20))
    assert reason is not None and "daily loss" in reason
    # profits offset losses
    g.record_realised_pnl(D(25), T0)
    assert g.realised_today(T0) == D(-5)


def test_realised_resets_at_utc_midnight() -> None:
    g = gate()
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    g.record_realised_pnl(D(-60), midnight - 1)
    assert g.loss_limit_breached(midnight - 1)
    assert g.realised_today(midnight) == 0
    assert not g.loss_limit_breached(midnight)
    assert g.allow_entry(D(10), midnight) is None


def test_cooldown_blocks_then_expires() -> None:
    g = gate()
    assert not g.cooling_down(T0)
    g.start_cooldown(T0)
    assert g.cooldown_until_ms == T0 + 2_000
    reason = g.allow_entry(D(10), T0 + 1_999)
    assert reason is not None and "cooling down" in reason
    assert g.allow_entry(D(10), T0 + 2_000) is None


def test_a_later_cooldown_never_shortens_one() -> None:
    g = gate(cooldown_ms=1_000)
    g.start_cooldown(T0 + 5_000)
    g.start_cooldown(T0)
    assert g.cooldown_until_ms == T0 + 6_000


@pytest.mark.parametrize(
    "kw",
    [
        {"max_position_usd": 1000.0},
        {"max_position_usd": D(0)},
        {"max_daily_loss_usd": D(-1)},
        {"max_orders_per_minute": 0},
        {"cooldown_ms": -1},
    ],
)
def test_bad_limits_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        RiskLimits(**kw)  # type: ignore[arg-type]
