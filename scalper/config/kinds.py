"""The kinds of setting values: each converts a raw value to its type and checks it.

One converter per kind (int in a range, a URL of some schemes, a secret, a log
rotation...), shared by every key of that kind; the rules a kind shares with the
engine's config and the model types (a link-id part, a trigger, a fee rate) come
from ``core.rules``, so all three refuse the same values. Also the error type of the
settings, ``Secret``, and the allowed-value constants.
"""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from ..core.model import TriggerBy
from ..core.rules import (
    check_int,
    check_link_part,
    check_number,
    check_positive_decimal,
    check_trigger,
)

MODES: Final = ("sim", "demo", "testnet", "live")
LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: Final = ("human", "json")

#: Bybit's hosts per mode: rest, ws public, ws private.
#: Demo has no public stream of its own: Bybit's docs say to use mainnet's.
BYBIT_HOSTS: Final[Mapping[str, tuple[str, str, str]]] = types.MappingProxyType(
    {
        "live": (
            "https://api.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream.bybit.com/v5/private",
        ),
        "testnet": (
            "https://api-testnet.bybit.com",
            "wss://stream-testnet.bybit.com/v5/public/linear",
            "wss://stream-testnet.bybit.com/v5/private",
        ),
        "demo": (
            "https://api-demo.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream-demo.bybit.com/v5/private",
        ),
    }
)


LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: secrets outside ``[exchange]``: never from the committed settings.toml
_OTHER_SECRETS: Final = frozenset({"http.token", "telegram.token"})


class SettingsError(Exception):
    """A settings value is wrong. ``str()`` is ``<section.key>: <why>``, one line."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key
        self.why = why


class Secret:
    """A secret string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call only where it is used (signing), never to display."""
        return self._value

    def masked(self) -> str:
        """A display form: ``****`` plus the last 2 characters of a long secret."""
        return "****" + self._value[-2:] if len(self._value) >= 16 else "****"

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# ---------------------------------------------------------------- value kinds
#
# A kind converts a raw value to the key's type and checks it, raising ValueError with
# the reason. ``text=True`` means the value is a string from the environment or a flag
# and must be parsed; from a TOML file the value must already have the right type.

Convert = Callable[[object, bool], Any]


class _BadValue(ValueError):
    """A value of the wrong type or out of range (the loader adds the key)."""


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _number_text(value: object, text: bool, parse: Callable[[str], object], what: str) -> object:
    """A number given as text (``_`` separators allowed) parsed; anything else as it is."""
    if text and isinstance(value, str):
        try:
            return parse(value.strip().replace("_", ""))
        except ValueError:
            raise _BadValue(f"expected {what}, got {value!r}") from None
    return value


def _int(minimum: int | None = None, maximum: int | None = None) -> Convert:
    def convert(value: object, text: bool) -> int:
        number = _number_text(value, text, int, "an integer")
        return check_int(number, ge=minimum, le=maximum)  # the one rule (core.rules)

    return convert


def _float(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Convert:
    def convert(value: object, text: bool) -> float:
        number = _number_text(value, text, float, "a number")
        return check_number(number, gt=gt, ge=ge, le=le)  # the one rule (core.rules)

    return convert


def _decimal(check: Callable[[object], Decimal] = check_positive_decimal) -> Convert:
    """Money: kept exact (a TOML float goes through its repr, ``0.1`` -> ``0.1``)."""

    def convert(value: object, text: bool) -> Decimal:
        if isinstance(value, Decimal):
            number = value
        elif (text and isinstance(value, str)) or type(value) is int:
            try:
                number = Decimal(str(value).strip().replace("_", ""))
            except InvalidOperation:
                raise _BadValue(f"expected a number, got {_show(value)}") from None
        elif type(value) is float:
            number = Decimal(repr(value))
        else:
            raise _BadValue(f"expected a number, got {_show(value)}")
        if not number.is_finite():
            raise _BadValue(f"must be a finite number, got {value}")
        return check(number)  # the one rule (core.rules)

    return convert


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _bool() -> Convert:
    def convert(value: object, text: bool) -> bool:
        if text and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise _BadValue(f"expected true or false, got {value!r}")
        if type(value) is not bool:
            raise _BadValue(f"expected true or false, got {_show(value)}")
        return value

    return convert


def _str(*, empty: bool = True) -> Convert:
    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected a string, got {_show(value)}")
        if not empty and not value.strip():
            raise _BadValue("must not be empty")
        return value

    return convert


def _path(*, empty: bool = True) -> Convert:
    """A file or directory path: a string the operating system can open (no NUL byte,
    which every path call refuses with a bare ValueError far from the setting)."""
    text_of = _str(empty=empty)

    def convert(value: object, text: bool) -> str:
        path: str = text_of(value, text)
        if "\x00" in path:
            raise _BadValue("a path cannot contain a NUL byte")
        return path

    return convert


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Convert:
    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected one of {', '.join(options)}, got {_show(value)}")
        normal = value.strip().upper() if upper else value.strip()
        if normal not in options:
            raise _BadValue(f"expected one of {', '.join(options)}, got {value!r}")
        return normal

    return convert


def _link_part() -> Convert:
    """A part of our orderLinkId (the engine's rule: core.rules.check_link_part)."""

    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected a string, got {_show(value)}")
        return check_link_part(value)

    return convert


def _trigger() -> Convert:
    """A stop trigger name, checked by the engine's rule (core.rules.check_trigger)."""

    def convert(value: object, text: bool) -> str:
        trigger: TriggerBy = check_trigger(value.strip() if isinstance(value, str) else value)
        return trigger.value

    return convert


def _url(*schemes: str) -> Convert:
    """A URL of one of ``schemes`` with a host, or "" (derived from the mode)."""

    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected a URL string, got {_show(value)}")
        url = value.strip()
        if not url:
            return ""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in schemes or not rest or rest[0] in "/?#":
            shapes = " or ".join(f"{s}://HOST[:PORT][/PATH]" for s in schemes)
            raise _BadValue(f"expected {shapes}, got {value!r}")
        if any(c.isspace() for c in url):
            raise _BadValue(f"a URL may not contain spaces, got {value!r}")
        return url.rstrip("/") if scheme.lower().startswith("http") else url

    return convert


def _host() -> Convert:
    """A host name or IP address to bind: no scheme, port, path or spaces."""

    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected a host name or IP address, got {_show(value)}")
        host = value.strip()
        if not host:
            raise _BadValue("must not be empty")
        if any(c.isspace() or c in "/?#@" for c in host) or "://" in host:
            raise _BadValue(f"expected a host name or IP address, got {value!r}")
        return host

    return convert


def _str_list() -> Convert:
    """A list of symbols: a TOML array, or in text ``A,B,C`` / ``["A","B"]``."""

    def convert(value: object, text: bool) -> tuple[str, ...]:
        if text and isinstance(value, str):
            raw = value.strip()
            if raw.startswith("["):
                try:
                    value = tomllib.loads(f"v = {raw}")["v"]
                except tomllib.TOMLDecodeError:
                    raise _BadValue(f'expected a list like A,B or ["A","B"], got {raw!r}') from None
            else:
                value = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _BadValue(f"expected a list of strings, got {_show(value)}")
        items = tuple(v.strip().upper() for v in value)
        if any(not item for item in items):
            raise _BadValue("list items must not be empty")
        return items

    return convert


def _secret() -> Convert:
    def convert(value: object, text: bool) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            # never show the value: it may be a mistyped secret
            raise _BadValue(f"expected a string, got a {type(value).__name__}")
        stripped = value.strip()
        if not stripped:
            raise _BadValue("must not be empty")
        if any(c.isspace() for c in stripped):
            raise _BadValue("must not contain spaces")
        return Secret(stripped)

    return convert


def _setting(default: Any, convert: Convert, doc: str) -> Any:
    """An attrs field that carries its converter (type + range check) and its doc."""

    def validate(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        try:
            convert(value, False)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}: {exc}") from None

    return attrs.field(
        default=default, validator=validate, metadata={"convert": convert, "doc": doc}
    )


# [log] rotation / retention / compression
LOG_COMPRESSIONS: Final = ("", "gz", "bz2", "xz", "zip", "tar.gz", "tar.bz2", "tar.xz")
_SIZE = re.compile(r"\d+(\.\d+)?\s*(b|kb|mb|gb|kib|mib|gib)", re.IGNORECASE)
_AGE = re.compile(
    r"\d+(\.\d+)?\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?|w|weeks?)", re.IGNORECASE
)
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _log_rotation() -> Convert:
    """A size ("50 MB"), an age ("1 day") or a time of day ("00:00"), or ""."""

    def convert(value: object, text: bool) -> str:
        if not isinstance(value, str):
            raise _BadValue(f"expected a string, got {_show(value)}")
        v = value.strip()
        if v and not any(p.fullmatch(v) for p in (_SIZE, _AGE, _TIME_OF_DAY)):
            raise _BadValue(
                f'expected a size ("50 MB"), an age ("1 day") or a time ("00:00"), got {value!r}'
            )
        return v

    return convert


def _log_retention() -> Convert:
    """An age ("14 days") or a number of files ("10"), or ""."""

    def convert(value: object, text: bool) -> str:
        if type(value) is int and not text:
            value = str(value)
        if not isinstance(value, str):
            raise _BadValue(f"expected a string, got {_show(value)}")
        v = value.strip()
        if v and not (_AGE.fullmatch(v) or (v.isdigit() and int(v) > 0)):
            raise _BadValue(f'expected an age ("14 days") or a file count ("10"), got {value!r}')
        return v

    return convert


def _int_list() -> Convert:
    """A list of integers (Telegram chat ids): a TOML array, or in text ``1,-2``."""

    def convert(value: object, text: bool) -> tuple[int, ...]:
        if text and isinstance(value, str):
            raw = value.strip().strip("[]")
            try:
                value = [int(part.strip()) for part in raw.split(",") if part.strip()]
            except ValueError:
                raise _BadValue(f"expected a list of integers like 1,-2, got {raw!r}") from None
        if not isinstance(value, list | tuple) or not all(type(v) is int for v in value):
            raise _BadValue(f"expected a list of integers, got {_show(value)}")
        return tuple(value)

    return convert
