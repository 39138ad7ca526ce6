"""The attrs field helpers of ``core.rules``: a default, and the settings' number rules."""

from __future__ import annotations

import attrs
import pytest

from scalper.core.rules import int_field, number_field


@attrs.frozen(kw_only=True)
class _Options:
    timeout_s: float = number_field(2.5, gt=0)
    delay_s: float = number_field(0.0, ge=0, le=10)
    attempts: int = int_field(3, ge=1)


def test_defaults_apply_when_not_given() -> None:
    assert _Options() == _Options(timeout_s=2.5, delay_s=0.0, attempts=3)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"timeout_s": 0}, "timeout_s must be > 0, got 0"),
        ({"timeout_s": float("nan")}, "timeout_s must be a finite number, got nan"),
        ({"delay_s": -0.1}, "delay_s must be >= 0, got -0.1"),
        ({"delay_s": 11}, "delay_s must be <= 10, got 11"),
        ({"attempts": 0}, "attempts must be >= 1, got 0"),
        ({"attempts": True}, "attempts expected an integer, got True"),
        ({"timeout_s": "1"}, "timeout_s expected a number, got '1'"),
    ],
)
def test_a_value_out_of_its_rule_is_refused_with_the_attribute_named(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValueError) as caught:
        _Options(**changes)  # type: ignore[arg-type]
    assert str(caught.value) == reason


def test_ints_are_accepted_where_a_number_is_asked() -> None:
    assert _Options(timeout_s=30).timeout_s == 30
