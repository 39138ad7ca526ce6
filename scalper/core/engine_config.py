"""The engine's settings (``[strategy]`` and ``[risk]``) in core units, validated.

Each field's rule is the one ``core.rules`` holds for that concept, so the settings
loader and the engine refuse the same values with the same reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from .risk import RiskLimits
from .rules import (
    POSITIVE_DECIMAL,
    check_int,
    check_link_part,
    check_number,
    check_optional_ms,
    field_validator,
)

__all__ = ["EngineConfig"]

_link_part = field_validator(check_link_part)
_positive_float = field_validator(check_number, gt=0.0)
_non_negative_float = field_validator(check_number, ge=0.0)
_optional_ms = field_validator(check_optional_ms)


def _int_ge(minimum: int) -> Any:
    return field_validator(check_int, ge=minimum)


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Everything the engine decides with (``[strategy]`` and ``[risk]``), in core units.

    Percentages are percent (``stop_loss_pct=0.5`` is 0.5 %); times are milliseconds.
    ``session_tag`` must differ between runs (see ``make_session_tag``).
    """

    session_tag: str = attrs.field(validator=_link_part)
    window: int = attrs.field(default=100, validator=_int_ge(1))
    min_ticks: int = attrs.field(default=50, validator=_int_ge(1))
    momentum_threshold: float = attrs.field(default=0.001, validator=_non_negative_float)
    max_spread_bps: float = attrs.field(default=20.0, validator=_positive_float)
    position_usd: Decimal = attrs.field(default=Decimal(1000), validator=POSITIVE_DECIMAL)
    stop_loss_pct: float = attrs.field(default=0.5, validator=_positive_float)
    take_profit_pct: float = attrs.field(default=1.0, validator=_positive_float)
    stale_ms: int = attrs.field(default=500, validator=_int_ge(1))
    #: a book tighter than this (bps) with both top sizes above ``liquid_min_size``
    #: takes a Market IOC entry; otherwise a PostOnly limit at the touch
    liquid_spread_bps: float = attrs.field(default=10.0, validator=_non_negative_float)
    liquid_min_size: float = attrs.field(default=100.0, validator=_non_negative_float)
    max_hold_ms: int | None = attrs.field(default=None, validator=_optional_ms)
    link_id_prefix: str = attrs.field(default="scalp", validator=_link_part)
    close_retry_backoff_ms: int = attrs.field(default=1_000, validator=_int_ge(0))
    flatten_on_halt: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    risk: RiskLimits = attrs.field(factory=RiskLimits)
    #: at most one "ignoring data of other symbol" log per symbol per interval
    ignore_log_interval_ms: int = attrs.field(default=10_000, validator=_int_ge(0))

    def __attrs_post_init__(self) -> None:
        if self.min_ticks > self.window:
            raise ValueError(f"min_ticks ({self.min_ticks}) must be <= window ({self.window})")
        if self.stop_loss_pct + self.risk.exchange_stop_margin_pct >= 100:
            # a long's exchange stop would be at or below zero
            raise ValueError(
                "stop_loss_pct + risk.exchange_stop_margin_pct must be < 100, got "
                f"{self.stop_loss_pct} + {self.risk.exchange_stop_margin_pct}"
            )

    @property
    def cooldown_ms(self) -> int:
        """No entry for this long after a failed entry or a losing close (``risk.cooldown_ms``)."""
        return self.risk.cooldown_ms
