"""One home for every value rule: settings, the engine's config and the model types.

Why one module: when the settings loader and the engine each carried their own copy
of a rule, the two drifted (``strategy.link_id_prefix = "my-bot"`` passed the loader
and then made the engine raise a bare ``ValueError`` at start-up). Here each concept
has exactly one check; ``scalper.config`` calls it after parsing text, the attrs
classes of ``core`` call it through ``field_validator``, so a value one side refuses
the other refuses too, with the same reason.

A check takes the value and returns it (possibly normalised, e.g. a trigger name
turned into ``TriggerBy``) or raises ``RuleError`` (a ``ValueError``) whose text is
the reason only; the caller adds the key or attribute name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import attrs

__all__ = [
    "DECIMAL",
    "LINK_PART_WHY",
    "NON_NEGATIVE_DECIMAL",
    "OPTIONAL_POSITIVE_DECIMAL",
    "POSITIVE_DECIMAL",
    "RuleError",
    "RuleTypeError",
    "check_decimal",
    "check_fee_rate",
    "check_int",
    "check_link_part",
    "check_non_negative_decimal",
    "check_number",
    "check_optional_ms",
    "check_optional_positive_decimal",
    "check_percent",
    "check_positive_decimal",
    "check_trigger",
    "field_validator",
    "int_field",
    "number_field",
]

T = TypeVar("T")


class RuleError(ValueError):
    """A value breaks a rule; ``str()`` is the reason (the caller names the key)."""


class RuleTypeError(RuleError, TypeError):
    """The value has the wrong type (a float where a Decimal belongs): also a TypeError."""


def check_decimal(value: object) -> Decimal:
    """A finite ``Decimal`` (never a float: money and order values stay exact)."""
    # bool is an int subclass and float is the thing we refuse: check the exact type.
    if type(value) is not Decimal:
        raise RuleTypeError(f"must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise RuleError(f"must be finite, got {value}")
    return value


def check_positive_decimal(value: object) -> Decimal:
    """A finite ``Decimal`` > 0 (prices, quantities, limits in USD)."""
    number = check_decimal(value)
    if number <= 0:
        raise RuleError(f"must be > 0, got {number}")
    return number


def check_non_negative_decimal(value: object) -> Decimal:
    """A finite ``Decimal`` >= 0 (cumulative quantities, sizes)."""
    number = check_decimal(value)
    if number < 0:
        raise RuleError(f"must be >= 0, got {number}")
    return number


def check_optional_positive_decimal(value: object) -> Decimal | None:
    """None, or a positive ``Decimal`` (an optional price, a stop)."""
    return None if value is None else check_positive_decimal(value)


def check_int(value: object, *, ge: int | None = None, le: int | None = None) -> int:
    """An ``int`` (not a bool) within ``[ge, le]``."""
    if type(value) is not int:
        raise RuleError(f"expected an integer, got {value!r}")
    _check_bounds(value, value, ge=ge, le=le, show=str)
    return value


def check_number(
    value: object, *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> float:
    """A finite real number (int or float, not a bool) in range, returned as float."""
    if type(value) not in (int, float):
        raise RuleError(f"expected a number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise RuleError(f"must be a finite number, got {value}")
    _check_bounds(value, number, gt=gt, ge=ge, le=le, show=lambda bound: f"{bound:g}")
    return number


def _check_bounds(
    value: object,
    number: float,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    show: Callable[[float], str],
) -> None:
    """The range rule of ``check_int`` and ``check_number``; the reason shows ``value``."""
    if gt is not None and number <= gt:
        raise RuleError(f"must be > {show(gt)}, got {value}")
    if ge is not None and number < ge:
        raise RuleError(f"must be >= {show(ge)}, got {value}")
    if le is not None and number > le:
        raise RuleError(f"must be <= {show(le)}, got {value}")


def check_percent(value: object, *, zero: bool = False, le: float = 100.0) -> float:
    """A percentage (``0.5`` = 0.5 %): > 0 (>= 0 with ``zero``) and <= ``le``."""
    if zero:
        return check_number(value, ge=0.0, le=le)
    return check_number(value, gt=0.0, le=le)


def check_fee_rate(value: object) -> Decimal:
    """A fee rate as a fraction (``0.00055`` = 0.055 %): a Decimal in [0, 0.1]."""
    rate = check_non_negative_decimal(value)
    if rate > Decimal("0.1"):
        raise RuleError(f"must be <= 0.1 (a fraction, not percent), got {rate}")
    return rate


def check_optional_ms(value: object) -> int | None:
    """None (no limit) or a duration in ms > 0."""
    return None if value is None else check_int(value, ge=1)


#: one part of our orderLinkId: the prefix or the session tag. No "-": it separates
#: the parts, and a prefix "my" would otherwise claim the orders of prefix "my-bot".
#: 12 + 1 + 12 + 1 + kind + counter stays inside Bybit's 36 characters.
_LINK_PART = re.compile(r"[A-Za-z0-9_]{1,12}")
LINK_PART_WHY = "must be 1-12 characters of A-Z a-z 0-9 _"


def check_link_part(value: object) -> str:
    """A part of our client order id (``strategy.link_id_prefix``, the session tag)."""
    if not isinstance(value, str) or not _LINK_PART.fullmatch(value):
        raise RuleError(f"{LINK_PART_WHY}, got {value!r}")
    return value


def check_trigger(value: object) -> Any:
    """A stop trigger: a ``TriggerBy`` or its Bybit name ("MarkPrice", ...); returns the enum."""
    from .model import TriggerBy  # model imports this module: import at call time

    if isinstance(value, TriggerBy):
        return value
    names = ", ".join(t.value for t in TriggerBy)
    if not isinstance(value, str):
        raise RuleError(f"expected one of {names}, got {value!r}")
    for trigger in TriggerBy:
        if value.strip() == trigger.value:
            return trigger
    raise RuleError(f"expected one of {names}, got {value!r}")


def field_validator(check: Callable[..., object], **kw: Any) -> Callable[[Any, Any, Any], None]:
    """An attrs validator running ``check``; the error names the attribute."""

    def validate(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        try:
            check(value, **kw)
        except RuleError as exc:
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"{attribute.name} {exc}") from None

    return validate


# The Decimal rules as attrs validators, named once for every attrs class of core.
#: any finite Decimal (a fee, a PnL: may be negative)
DECIMAL = field_validator(check_decimal)
#: a Decimal > 0 (a price, a quantity, a limit)
POSITIVE_DECIMAL = field_validator(check_positive_decimal)
#: a Decimal >= 0 (a cumulative quantity, a size)
NON_NEGATIVE_DECIMAL = field_validator(check_non_negative_decimal)
#: None or a Decimal > 0 (an optional price, a stop)
OPTIONAL_POSITIVE_DECIMAL = field_validator(check_optional_positive_decimal)


# Field helpers: an attrs field with its default and its rule, for the option types of
# the shells (retry, confirmation timing) that take the same number rules as settings.


def number_field(
    default: float, *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> float:
    """An attrs field: a real number (``check_number``) in range, ``default`` if not given."""
    return attrs.field(
        default=default, validator=field_validator(check_number, gt=gt, ge=ge, le=le)
    )


def int_field(default: int, *, ge: int | None = None, le: int | None = None) -> int:
    """An attrs field: an ``int`` (``check_int``) in ``[ge, le]``, ``default`` if not given."""
    return attrs.field(default=default, validator=field_validator(check_int, ge=ge, le=le))
