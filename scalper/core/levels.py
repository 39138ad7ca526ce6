"""A book level's wire strings read exactly: a price to a count of ticks, a size to a float.

Why a module of its own: this is the one place that decides what a well-formed level is
(``core.book`` caches the tick counts per price string and applies the levels). A price
is read as a decimal string straight into an integer number of ticks, so prices stay
exact without a Decimal per level; a price that is not a plain non-negative decimal,
lies between two ticks or is not positive, and a size that is not a finite number >= 0,
raise ``BadLevel`` with the reason the book reports when it turns invalid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["BadLevel", "Level", "TickGrid", "parse_size", "reason"]

#: One wire level: ``[price_str, size_str]`` exactly as Bybit sends it, or with the size
#: already read to a float by a decoder (``bybit.decode`` does it in C); either way the
#: book applies the size only when it is finite and >= 0.
Level = Sequence[str] | tuple[str, float]

_INF = float("inf")
#: digits before the point a price may have: a quadrillion USDT is no contract's price,
#: and past this the tick count no longer fits a float (the book's prices are floats)
_MAX_WHOLE_DIGITS = 15
_PRICE_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?", re.ASCII)


class BadLevel(ValueError):
    """A level that cannot be applied (malformed number, off-grid price)."""


class TickGrid:
    """The price grid of an instrument: ``tick_units`` ticks of ``10**-digits``."""

    __slots__ = ("digits", "scale", "tick_units")

    def __init__(self, digits: int, tick_units: int) -> None:
        #: prices are read in "units" of 10**-digits, then divided by the tick in units
        self.digits = digits
        self.scale: int = 10**digits
        self.tick_units = tick_units

    def ticks(self, price: str) -> int:
        """The exact tick count of a price string."""
        match = _PRICE_RE.fullmatch(price) if isinstance(price, str) else None
        if match is None or not (match.group(1) or match.group(2)):
            raise BadLevel(f"malformed price {price!r}")
        whole, frac = match.group(1).lstrip("0"), (match.group(2) or "").rstrip("0")
        if len(whole) > _MAX_WHOLE_DIGITS:
            raise BadLevel(f"price {price[:24]}... is out of range ({len(whole)} digits)")
        digits = self.digits
        if len(frac) > digits:
            raise BadLevel(f"price {price} is off the tick grid")
        units = int(whole or "0") * self.scale + int(frac.ljust(digits, "0") or "0")
        ticks, rest = divmod(units, self.tick_units)
        if rest:
            raise BadLevel(f"price {price} is off the tick grid")
        if ticks <= 0:
            raise BadLevel(f"price {price} is not positive")
        return ticks


def parse_size(size_str: str | float) -> float:
    """A size string (or a float) as a float, finite and >= 0 (zero deletes a level)."""
    try:
        size = float(size_str)
    except (TypeError, ValueError):
        raise BadLevel(f"malformed size {size_str!r}") from None
    if not 0.0 <= size < _INF:
        raise BadLevel(f"malformed size {size_str!r}")
    return size


def reason(exc: Exception) -> str:
    """Invalid-book reason for a level that could not be applied."""
    return str(exc) if isinstance(exc, BadLevel) else f"malformed level: {exc}"
