"""Reading one field of a Bybit wire dict, and counting what could not be read.

Every parser of ``scalper.bybit`` (stream frames in ``parse``, REST rows in ``rows``)
reads its fields through these helpers, so a missing key, a wrong JSON type or an
impossible value is always the same ``ParseError`` with the same *kind*, and the kinds
``ParseStats`` counts mean the same thing on every stream and every REST list.

Bybit sends numbers as decimal strings (prices, sizes, fees) and times as either JSON
ints or strings; ``""`` often stands for "not set". The readers spell those rules once.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import orjson
from loguru import logger

from .errors import ProtocolError

__all__ = [
    "BAD_VALUE",
    "MALFORMED_JSON",
    "MISSING_FIELD",
    "UNKNOWN_MESSAGE",
    "UNKNOWN_TOPIC",
    "WRONG_TYPE",
    "ZERO",
    "ParseError",
    "ParseStats",
    "as_array",
    "as_object",
    "loads",
    "read_bool",
    "read_dec",
    "read_enum",
    "read_field",
    "read_float",
    "read_int",
    "read_opt_int",
    "read_opt_price",
    "read_opt_str",
    "read_str",
]

# Kinds of parse failure counted by ParseStats.
MALFORMED_JSON: Final = "malformed_json"  #: not JSON, or not a JSON object
MISSING_FIELD: Final = "missing_field"  #: a required key is absent
WRONG_TYPE: Final = "wrong_type"  #: a key holds the wrong JSON type
BAD_VALUE: Final = "bad_value"  #: right type, impossible value (unknown enum, bad number)
UNKNOWN_TOPIC: Final = "unknown_topic"  #: a topic we did not subscribe to / cannot read
UNKNOWN_MESSAGE: Final = "unknown_message"  #: neither a topic push nor a control reply

ZERO: Final = Decimal(0)
_E = TypeVar("_E")


class ParseError(ProtocolError):
    """A wire payload did not have the shape Bybit documents."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {detail}")


class ParseStats:
    """Counts parse failures per kind and logs them rate-limited (never per message).

    ``ignored`` counts well-formed records we deliberately drop (e.g. funding
    executions); it is not an error.
    """

    def __init__(
        self,
        *,
        name: str = "stream",
        log_interval_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        #: called with the kind of every failure (e.g. to feed a shared metrics counter)
        self._on_error = on_error
        self.counts: Counter[str] = Counter()
        self.ignored = 0
        self._log_interval_s = log_interval_s
        self._monotonic = monotonic
        self._last_log: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    @property
    def errors(self) -> int:
        """Total number of frames or rows skipped because they could not be parsed."""
        return sum(self.counts.values())

    def record(self, kind: str, detail: str) -> None:
        """Count one failure; log it unless this kind was logged in the last interval."""
        self.counts[kind] += 1
        if self._on_error is not None:
            self._on_error(kind)
        now = self._monotonic()
        last = self._last_log.get(kind)
        if last is not None and now - last < self._log_interval_s:
            self._suppressed[kind] += 1
            return
        self._last_log[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        logger.bind(stream=self.name, kind=kind).warning(
            "skipped a bad {} message ({}): {} [total {}, {} similar not logged]",
            self.name,
            kind,
            detail[:200],
            self.counts[kind],
            suppressed,
        )

    def as_dict(self) -> dict[str, int]:
        """Counters for status/metrics output."""
        out = dict(self.counts)
        out["ignored"] = self.ignored
        return out


def loads(raw: str | bytes) -> Any:
    """JSON text -> Python object (orjson)."""
    return orjson.loads(raw)


def read_field(d: Mapping[str, Any], key: str) -> Any:
    """``d[key]``; an absent key is a ``MISSING_FIELD`` naming it."""
    try:
        return d[key]
    except KeyError:
        raise ParseError(MISSING_FIELD, f"no {key!r}") from None


def read_str(d: Mapping[str, Any], key: str) -> str:
    """A required string field."""
    v = read_field(d, key)
    if type(v) is not str:
        raise ParseError(WRONG_TYPE, f"{key!r} is {type(v).__name__}, want str")
    return v


def read_opt_str(d: Mapping[str, Any], key: str, default: str = "") -> str:
    """A string field that may be absent or null (then ``default``)."""
    v = d.get(key, default)
    if v is None:
        return default
    if type(v) is not str:
        raise ParseError(WRONG_TYPE, f"{key!r} is {type(v).__name__}, want str")
    return v


def read_int(d: Mapping[str, Any], key: str) -> int:
    """An int given as a JSON int or a decimal string (Bybit uses both for times)."""
    v = read_field(d, key)
    if type(v) is int:
        return v
    if type(v) is str:
        try:
            return int(v)
        except ValueError:
            raise ParseError(BAD_VALUE, f"{key!r}={v!r} is not an integer") from None
    raise ParseError(WRONG_TYPE, f"{key!r} is {type(v).__name__}, want int")


def read_opt_int(d: Mapping[str, Any], key: str) -> int:
    """An int that may be absent, null or ``""`` (then 0)."""
    v = d.get(key)
    if v is None or v == "":
        return 0
    return read_int(d, key)


def read_bool(d: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    """A JSON bool; absent reads as ``default`` when one is given."""
    if default is not None and key not in d:
        return default
    v = read_field(d, key)
    if type(v) is not bool:
        raise ParseError(WRONG_TYPE, f"{key!r} is {type(v).__name__}, want bool")
    return v


def read_dec(d: Mapping[str, Any], key: str, *, empty: Decimal | None = None) -> Decimal:
    """A decimal string. ``""`` (or an absent key) reads as ``empty`` when it is given."""
    if empty is not None and key not in d:
        return empty
    s = read_str(d, key)
    if s == "":
        if empty is None:
            raise ParseError(BAD_VALUE, f"{key!r} is empty")
        return empty
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ParseError(BAD_VALUE, f"{key!r}={s!r} is not a number") from None
    if not value.is_finite():
        raise ParseError(BAD_VALUE, f"{key!r}={s!r} is not finite")
    return value


def read_opt_price(d: Mapping[str, Any], key: str) -> Decimal | None:
    """A price where ``""`` or ``"0"`` means "none" (e.g. avgPrice of an unfilled order)."""
    value = read_dec(d, key, empty=ZERO)
    return value if value > 0 else None


def read_float(d: Mapping[str, Any], key: str, *, required: bool) -> float | None:
    """A market-data number (float); absent (when not ``required``) or ``""`` is None."""
    if key not in d and not required:
        return None
    s = read_str(d, key)
    if s == "":
        return None
    try:
        value = float(s)
    except ValueError:
        raise ParseError(BAD_VALUE, f"{key!r}={s!r} is not a number") from None
    if not math.isfinite(value):  # "inf", "1e999", "nan": no market number is one
        raise ParseError(BAD_VALUE, f"{key!r}={s!r} is not finite")
    return value


def read_enum(cls: Callable[[str], _E], d: Mapping[str, Any], key: str) -> _E:
    """A string field that must be one of ``cls``'s values."""
    s = read_str(d, key)
    try:
        return cls(s)
    except ValueError:
        raise ParseError(BAD_VALUE, f"{key!r}={s!r} is not a known value") from None


def as_object(v: Any, what: str) -> dict[str, Any]:
    """``v`` checked to be a JSON object."""
    if type(v) is not dict:
        raise ParseError(WRONG_TYPE, f"{what} is {type(v).__name__}, want object")
    return v


def as_array(v: Any, what: str) -> list[Any]:
    """``v`` checked to be a JSON array."""
    if type(v) is not list:
        raise ParseError(WRONG_TYPE, f"{what} is {type(v).__name__}, want array")
    return v
