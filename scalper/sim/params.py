"""Reading request parameters the way Bybit does: strict types, 10001 with a useful text.

REST GET parameters arrive as strings, POST bodies as JSON values. Numbers that Bybit
documents as strings (qty, price, leverage) must be strings here too; a wrong type, a
missing required field or an unparsable number is a ``VenueError(10001, ...)`` naming
the parameter, never an exception that would become an HTTP 500.

The checks every REST endpoint shares live here too, so each endpoint says only what is
its own: ``category``, a listed ``symbol``, and the ``cursor`` of a paged list.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from .errors import VenueError

__all__ = [
    "Params",
    "Result",
    "check_category",
    "listed_symbol",
    "opt_bool",
    "opt_decimal",
    "opt_int",
    "opt_str",
    "page",
    "page_cursor",
    "req_decimal",
    "req_str",
    "required_symbol",
]

#: a request's parameters (GET query or POST body) and an endpoint's ``result``
Params = dict[str, Any]
Result = dict[str, Any]
T = TypeVar("T")

#: a plain decimal as Bybit writes numbers: no exponent, no sign games, bounded digits
#: (an exponent like "1e999999" would make the grid arithmetic blow up)
_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,12})?")


def opt_str(params: Params, name: str) -> str | None:
    """A string parameter, or None when absent / null / empty."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise VenueError(
            10001, f"params error: {name} must be a string, got {type(value).__name__}"
        )
    return value


def req_str(params: Params, name: str) -> str:
    """A required string parameter."""
    value = opt_str(params, name)
    if value is None:
        raise VenueError(10001, f"params error: missing required parameter {name}")
    return value


def opt_decimal(params: Params, name: str) -> Decimal | None:
    """A decimal number sent as a string (Bybit's convention), or None when absent."""
    text = opt_str(params, name)
    if text is None:
        return None
    if not _DECIMAL.fullmatch(text):
        raise VenueError(10001, f"params error: {name} is not a plain decimal number: {text!r}")
    return Decimal(text)


def req_decimal(params: Params, name: str) -> Decimal:
    """A required decimal number sent as a string."""
    value = opt_decimal(params, name)
    if value is None:
        raise VenueError(10001, f"params error: missing required parameter {name}")
    return value


def opt_bool(params: Params, name: str) -> bool:
    """A boolean flag (JSON bool; "true"/"false" also accepted); absent -> False."""
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise VenueError(10001, f"params error: {name} must be a boolean, got {value!r}")


def opt_int(params: Params, name: str, default: int, lo: int, hi: int) -> int:
    """An integer (JSON int or digit string) within [lo, hi]; absent -> default."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise VenueError(10001, f"params error: {name} must be an integer")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise VenueError(10001, f"params error: {name} must be an integer") from None
    if not isinstance(value, int):
        raise VenueError(10001, f"params error: {name} must be an integer")
    if not lo <= value <= hi:
        raise VenueError(10001, f"params error: {name} must be between {lo} and {hi}")
    return value


def check_category(params: Params, *, listing: bool = False) -> bool:
    """Check ``category``: True for linear. Listings (instruments, tickers) answer an
    empty list for Bybit's other categories (generic clients load them all); every
    other endpoint refuses them."""
    category = opt_str(params, "category")
    if category is None:
        raise VenueError(10001, "params error: category is required")
    if category == "linear":
        return True
    if listing and category in ("spot", "inverse", "option"):
        return False
    raise VenueError(10001, f"params error: category {category} is not supported here")


def listed_symbol(params: Params, listed: Container[str]) -> str | None:
    """The ``symbol`` parameter when given (it must be listed), else None."""
    symbol = opt_str(params, "symbol")
    if symbol is not None and symbol not in listed:
        raise VenueError(10001, f"params error: symbol invalid: {symbol}")
    return symbol


def required_symbol(params: Params, listed: Container[str]) -> str:
    """The required ``symbol`` parameter, which must be listed."""
    symbol = req_str(params, "symbol")
    if symbol not in listed:
        raise VenueError(10001, f"params error: symbol invalid: {symbol}")
    return symbol


def page_cursor(params: Params) -> int:
    """Where a page starts: Bybit's ``cursor`` (ours: the index of the first item)."""
    text = opt_str(params, "cursor")
    if text is None:
        return 0
    if not text.isdigit():
        raise VenueError(10001, "params error: cursor invalid")
    return int(text)


def page(items: Sequence[T], params: Params, limit: int) -> tuple[Sequence[T], str]:
    """The page of ``items`` the request's cursor asks for (at most ``limit``), and the
    ``nextPageCursor`` ("" on the last page)."""
    start = page_cursor(params)
    end = start + limit
    return items[start:end], str(end) if end < len(items) else ""
