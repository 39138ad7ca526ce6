"""Settings: four sources merged, validated into frozen attrs classes.

Precedence, lowest first (DESIGN section 1):

1. built-in defaults: the defaults of the classes below, which are also written out
   in the repository's ``settings.toml`` (a test keeps the two equal). The file is
   read when present next to the package (an editable checkout); an installed copy
   works without it.
2. ``--config FILE``: a local TOML file (e.g. ``local.toml``, git-ignored).
3. the environment: ``SCALPER_<SECTION>__<KEY>`` (``SCALPER_SCANNER__INTERVAL_S=5``),
   plus ``BYBIT_API_KEY`` / ``BYBIT_API_SECRET``.
4. command-line flags (``--mode``, ``--rest-url``, ...), passed in as overrides.

Every value is checked for type, range, allowed values and URL shape; an unknown
section or key is an error, so a typo never silently falls back to a default. Any
problem raises ``SettingsError`` whose text is ``<section.key>: <why>``; the CLI
prints it as one line and exits 2.

Secrets (``exchange.api_key``, ``exchange.api_secret``) come only from
``BYBIT_API_KEY``/``BYBIT_API_SECRET``, a ``--config`` file or flags, never from the
committed ``settings.toml``. They are held in ``Secret``, whose repr and str never show
the value, and are masked by ``render_settings``. Error messages never echo them.

Each value's origin is kept in ``Settings.sources`` (``"section.key" -> origin``) so
``scalper check-config`` can say where everything came from.
"""

from __future__ import annotations

import argparse
import os
import tomllib
import types
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import attrs

from .core.model import TriggerBy
from .core.risk import RiskLimits
from .core.rules import (
    check_fee_rate,
    check_int,
    check_link_part,
    check_number,
    check_positive_decimal,
    check_trigger,
)
from .core.strategy import EngineConfig

__all__ = [
    "BYBIT_HOSTS",
    "ExchangeSettings",
    "ExecutionSettings",
    "JournalSettings",
    "LogSettings",
    "MetricsSettings",
    "ReconcileSettings",
    "RiskSettings",
    "ScannerSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "StrategySettings",
    "engine_config",
    "load_settings",
    "overrides_from_args",
    "render_settings",
]

#: The committed defaults file, when running from a checkout (absent when installed).
REPO_SETTINGS: Final = Path(__file__).resolve().parent.parent / "settings.toml"

MODES: Final = ("sim", "demo", "testnet", "live")
LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: Final = ("human", "json")

#: Bybit's hosts per mode (reference/bybit-v5.md section 1): rest, ws public, ws private.
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

_SECRET_ENV: Final = {"api_key": "BYBIT_API_KEY", "api_secret": "BYBIT_API_SECRET"}
_ENV_PREFIX: Final = "SCALPER_"

#: argparse dest -> settings key, for the flags of ``scalper run`` / ``check-config``
_FLAGS: Final = {
    "mode": "exchange.mode",
    "rest_url": "exchange.rest_url",
    "ws_public_url": "exchange.ws_public_url",
    "ws_private_url": "exchange.ws_private_url",
    "api_key": "exchange.api_key",
    "api_secret": "exchange.api_secret",
    "journal": "journal.path",
    "log_level": "log.level",
    "log_format": "log.format",
}


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


def _int(minimum: int | None = None, maximum: int | None = None) -> Convert:
    def convert(value: object, text: bool) -> int:
        if text and isinstance(value, str):
            try:
                value = int(value.strip().replace("_", ""))
            except ValueError:
                raise _BadValue(f"expected an integer, got {value!r}") from None
        return check_int(value, ge=minimum, le=maximum)  # the one rule (core.rules)

    return convert


def _float(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Convert:
    def convert(value: object, text: bool) -> float:
        if text and isinstance(value, str):
            try:
                value = float(value.strip().replace("_", ""))
            except ValueError:
                raise _BadValue(f"expected a number, got {value!r}") from None
        return check_number(value, gt=gt, ge=ge, le=le)  # the one rule (core.rules)

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


# ---------------------------------------------------------------- sections


@attrs.frozen(kw_only=True)
class ExchangeSettings:
    """``[exchange]``: where to trade and with which keys."""

    mode: str = _setting(
        "sim", _choice(MODES), "sim | demo | testnet | live (live also needs --live)"
    )
    rest_url: str = _setting("", _url("http", "https"), 'REST base URL; "" = from the mode')
    ws_public_url: str = _setting("", _url("ws", "wss"), 'public WebSocket URL; "" = from the mode')
    ws_private_url: str = _setting(
        "", _url("ws", "wss"), 'private WebSocket URL; "" = from the mode'
    )
    recv_window_ms: int = _setting(5000, _int(1, 60_000), "signature recv window (ms)")
    # (RUF009 does not know that _setting is attrs.field.)
    api_key: Secret | None = _setting(None, _secret(), "API key")  # noqa: RUF009
    api_secret: Secret | None = _setting(None, _secret(), "API secret")  # noqa: RUF009


@attrs.frozen(kw_only=True)
class ScannerSettings:
    """``[scanner]``: choosing the symbol."""

    interval_s: float = _setting(60.0, _float(gt=0), "seconds between scans")
    min_turnover: float = _setting(10_000_000.0, _float(ge=0), "minimum 24 h turnover (USDT)")
    switch_ratio: float = _setting(1.2, _float(ge=1.0), "switch when best > ratio x current score")
    exclude: tuple[str, ...] = _setting(
        ("BTCUSDT", "ETHUSDT", "USDCUSDT", "FDUSDUSDT", "USDEUSDT"),
        _str_list(),
        "symbols never traded (stablecoin pairs are always skipped)",
    )


@attrs.frozen(kw_only=True)
class StrategySettings:
    """``[strategy]``: the momentum scalper's parameters (the seed's values)."""

    window: int = _setting(100, _int(1, 100_000), "trades kept for VWAP / momentum")
    min_ticks: int = _setting(50, _int(1, 100_000), "trades needed before acting (<= window)")
    momentum_threshold: float = _setting(0.001, _float(gt=0), "|last - VWAP| / VWAP to enter")
    max_spread_bps: float = _setting(20.0, _float(gt=0), "no entry when the spread is wider")
    position_usd: Decimal = _setting(Decimal(1000), _decimal(), "entry size, USD")  # noqa: RUF009
    stop_loss_pct: float = _setting(0.5, _float(gt=0, le=100), "stop-loss, % from entry")
    take_profit_pct: float = _setting(1.0, _float(gt=0, le=1000), "take-profit, % from entry")
    stale_ms: int = _setting(500, _int(1, 600_000), "market data older than this is stale (ms)")
    cooldown_s: float = _setting(30.0, _float(ge=0), "no entry this long after a failure or loss")
    liquid_spread_bps: float = _setting(10.0, _float(gt=0), "liquid book: spread below this ...")
    liquid_min_size: float = _setting(100.0, _float(ge=0), "... and both top sizes above this")
    max_hold_s: float = _setting(300.0, _float(ge=0), "close a position after this long; 0 = never")
    link_id_prefix: str = _setting("scalp", _link_part(), "orderLinkId prefix of our orders")


@attrs.frozen(kw_only=True)
class ExecutionSettings:
    """``[execution]``: confirming orders (seed fix 2)."""

    poll_interval_ms: int = _setting(500, _int(10, 60_000), "REST order poll interval (ms)")
    confirm_timeout_s: float = _setting(10.0, _float(gt=0), "cancel an unconfirmed order after")


@attrs.frozen(kw_only=True)
class ReconcileSettings:
    """``[reconcile]``: position verification (seed fix 3)."""

    interval_s: float = _setting(60.0, _float(gt=0), "seconds between position checks")


@attrs.frozen(kw_only=True)
class RiskSettings:
    """``[risk]``: limits and what to do on exit."""

    max_position_usd: Decimal = _setting(Decimal(5000), _decimal(), "USD")  # noqa: RUF009
    max_daily_loss_usd: Decimal = _setting(Decimal(100), _decimal(), "USD")  # noqa: RUF009
    max_orders_per_minute: int = _setting(20, _int(1, 10_000), "order rate cap (entries+closes)")
    flatten_on_exit: bool = _setting(True, _bool(), "close the position on shutdown")
    exchange_stop_margin_pct: float = _setting(
        0.25, _float(ge=0, le=100), "exchange-side stop: this % beyond the bot's own stop"
    )
    exchange_stop_trigger: str = _setting(
        "MarkPrice", _trigger(), "MarkPrice | LastPrice | IndexPrice: what triggers that stop"
    )
    taker_fee_rate: Decimal = _setting(  # noqa: RUF009
        Decimal("0.00055"), _decimal(check_fee_rate), "fee rate assumed where none is reported"
    )


@attrs.frozen(kw_only=True)
class JournalSettings:
    """``[journal]``: the SQLite record of what the bot did."""

    path: str = _setting("journal.sqlite3", _str(empty=False), "journal file (SQLite)")


@attrs.frozen(kw_only=True)
class LogSettings:
    """``[log]``: log lines."""

    level: str = _setting("INFO", _choice(LOG_LEVELS, upper=True), "TRACE ... CRITICAL")
    format: str = _setting("human", _choice(LOG_FORMATS), "human | json")
    file: str = _setting("", _str(), 'also write logs to this file; "" = no file')


@attrs.frozen(kw_only=True)
class MetricsSettings:
    """``[metrics]``: the Prometheus endpoint (``GET http://host:port/metrics``)."""

    port: int = _setting(0, _int(0, 65535), "HTTP port of GET /metrics; 0 = off")
    host: str = _setting(
        "127.0.0.1", _host(), "address to listen on (loopback: not reachable from outside)"
    )


_SECTIONS: Final[Mapping[str, type[Any]]] = types.MappingProxyType(
    {
        "exchange": ExchangeSettings,
        "scanner": ScannerSettings,
        "strategy": StrategySettings,
        "execution": ExecutionSettings,
        "reconcile": ReconcileSettings,
        "risk": RiskSettings,
        "journal": JournalSettings,
        "log": LogSettings,
        "metrics": MetricsSettings,
    }
)


@attrs.frozen(kw_only=True)
class Settings:
    """All settings, one frozen object passed down from the CLI (no globals).

    ``Settings()`` is the built-in defaults; tests build variants with
    ``attrs.evolve``. ``sources`` maps ``"section.key"`` to where the value came from.
    """

    exchange: ExchangeSettings = attrs.field(factory=ExchangeSettings)
    scanner: ScannerSettings = attrs.field(factory=ScannerSettings)
    strategy: StrategySettings = attrs.field(factory=StrategySettings)
    execution: ExecutionSettings = attrs.field(factory=ExecutionSettings)
    reconcile: ReconcileSettings = attrs.field(factory=ReconcileSettings)
    risk: RiskSettings = attrs.field(factory=RiskSettings)
    journal: JournalSettings = attrs.field(factory=JournalSettings)
    log: LogSettings = attrs.field(factory=LogSettings)
    metrics: MetricsSettings = attrs.field(factory=MetricsSettings)
    sources: Mapping[str, str] = attrs.field(
        factory=lambda: types.MappingProxyType({}), eq=False, repr=False
    )

    def secrets(self) -> tuple[str, ...]:
        """The secret values, for the log redaction filter (``configure_logging``)."""
        return tuple(s.reveal() for s in (self.exchange.api_key, self.exchange.api_secret) if s)


# ---------------------------------------------------------------- loading


def _keys(section: str) -> dict[str, attrs.Attribute[Any]]:
    return {field.name: field for field in attrs.fields(_SECTIONS[section])}


def _defaults() -> dict[str, dict[str, Any]]:
    return {name: {f.name: f.default for f in attrs.fields(cls)} for name, cls in _SECTIONS.items()}


class _Merger:
    """Collects values from the sources in precedence order, checking each on arrival."""

    def __init__(self) -> None:
        self.values = _defaults()
        self.sources = {
            f"{section}.{key}": "default" for section, keys in self.values.items() for key in keys
        }

    def set(self, key: str, value: object, origin: str, *, text: bool) -> None:
        section, _, name = key.partition(".")
        if section not in _SECTIONS:
            raise SettingsError(section or key, f"unknown section (in {origin})")
        fields = _keys(section)
        if name not in fields:
            raise SettingsError(key, f"unknown key (in {origin})")
        convert: Convert = fields[name].metadata["convert"]
        try:
            converted = convert(value, text)
        except ValueError as exc:
            raise SettingsError(key, f"{exc} (from {origin})") from None
        self.values[section][name] = converted
        self.sources[key] = origin

    def merge_file(self, path: Path, origin: str, *, secrets_allowed: bool) -> None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise SettingsError(origin, "file not found") from None
        except IsADirectoryError:
            raise SettingsError(origin, "is a directory, not a file") from None
        except OSError as exc:
            raise SettingsError(origin, f"cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(origin, f"invalid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise SettingsError(origin, "invalid TOML: not UTF-8 text") from None
        for section, table in data.items():
            if section not in _SECTIONS:
                raise SettingsError(section, f"unknown section (in {origin})")
            if not isinstance(table, dict):
                raise SettingsError(section, f"expected a [{section}] table (in {origin})")
            for name, value in table.items():
                key = f"{section}.{name}"
                if section == "exchange" and name in _SECRET_ENV and not secrets_allowed:
                    raise SettingsError(
                        key,
                        f"secrets do not belong in the committed {origin}; "
                        f"use {_SECRET_ENV[name]} or a --config file",
                    )
                self.set(key, value, origin, text=False)

    def merge_env(self, env: Mapping[str, str]) -> None:
        for var in sorted(env):
            if not var.upper().startswith(_ENV_PREFIX) or "__" not in var:
                continue
            section, _, name = var[len(_ENV_PREFIX) :].lower().partition("__")
            key = f"{section}.{name}"
            if section == "exchange" and name in _SECRET_ENV:
                raise SettingsError(key, f"set it with {_SECRET_ENV[name]}, not {var}")
            self.set(key, env[var], f"env {var}", text=True)
        for name, var in _SECRET_ENV.items():
            value = env.get(var)
            if value:  # an empty variable counts as unset
                self.set(f"exchange.{name}", value, f"env {var}", text=True)

    def build(self) -> Settings:
        self._derive_urls()
        self._cross_check()
        sections = {name: cls(**self.values[name]) for name, cls in _SECTIONS.items()}
        return Settings(**sections, sources=types.MappingProxyType(dict(self.sources)))

    def _derive_urls(self) -> None:
        exchange = self.values["exchange"]
        hosts = BYBIT_HOSTS.get(exchange["mode"])
        for index, name in enumerate(("rest_url", "ws_public_url", "ws_private_url")):
            if exchange[name]:
                continue
            if hosts is None:
                self.sources[f"exchange.{name}"] += " (sim: the built-in exchange)"
            else:
                exchange[name] = hosts[index]
                self.sources[f"exchange.{name}"] = f"Bybit {exchange['mode']} host"

    def _cross_check(self) -> None:
        exchange = self.values["exchange"]
        if exchange["mode"] != "sim":
            for name, var in _SECRET_ENV.items():
                if exchange[name] is None:
                    raise SettingsError(
                        f"exchange.{name}",
                        f"required in mode {exchange['mode']!r}: "
                        f"set {var}, a --config file or --{name.replace('_', '-')}",
                    )
        strategy = self.values["strategy"]
        if strategy["min_ticks"] > strategy["window"]:
            raise SettingsError(
                "strategy.min_ticks",
                f"must be <= strategy.window ({strategy['window']}), got {strategy['min_ticks']}",
            )
        risk = self.values["risk"]
        if strategy["stop_loss_pct"] + risk["exchange_stop_margin_pct"] >= 100:
            # name the key that was set (the margin when both were)
            margin_set = self.sources["risk.exchange_stop_margin_pct"] != "default"
            key, other = (
                ("risk.exchange_stop_margin_pct", "strategy.stop_loss_pct")
                if margin_set
                else ("strategy.stop_loss_pct", "risk.exchange_stop_margin_pct")
            )
            raise SettingsError(
                key,
                f"{other} + this must be < 100 (a long's exchange stop would be at or "
                f"below 0), got {strategy['stop_loss_pct']} + "
                f"{risk['exchange_stop_margin_pct']}",
            )
        if risk["max_position_usd"] < strategy["position_usd"]:
            raise SettingsError(
                "risk.max_position_usd",
                f"must be >= strategy.position_usd ({strategy['position_usd']}), "
                f"got {risk['max_position_usd']}",
            )


def load_settings(
    config_path: str | None = None,
    overrides: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    defaults_path: Path | None = REPO_SETTINGS,
) -> Settings:
    """Merge defaults < ``settings.toml`` < ``--config`` file < env < flags, validated.

    ``overrides`` maps ``"section.key"`` to a value (None = not given), as made by
    ``overrides_from_args``; strings there are parsed like environment values.
    ``env`` defaults to ``os.environ``. ``defaults_path`` is the committed defaults
    file (skipped when absent or None). Raises ``SettingsError`` on any bad value.
    """
    merger = _Merger()
    if defaults_path is not None and defaults_path.is_file():
        merger.merge_file(defaults_path, defaults_path.name, secrets_allowed=False)
    if config_path is not None:
        merger.merge_file(Path(config_path), f"--config {config_path}", secrets_allowed=True)
    merger.merge_env(os.environ if env is None else env)
    flag_names = {key: "--" + dest.replace("_", "-") for dest, key in _FLAGS.items()}
    for key, value in (overrides or {}).items():
        if value is not None:
            origin = f"flag {flag_names[key]}" if key in flag_names else "override"
            merger.set(key, value, origin, text=True)
    return merger.build()


def engine_config(settings: Settings, session_tag: str) -> EngineConfig:
    """Translate settings (operator units: seconds, percent) into the engine's.

    The loader checked every value with the rules the engine uses (``core.rules``),
    so a loaded ``Settings`` always builds (a test holds the two together).
    """
    st, risk = settings.strategy, settings.risk
    return EngineConfig(
        session_tag=session_tag,
        window=st.window,
        min_ticks=st.min_ticks,
        momentum_threshold=st.momentum_threshold,
        max_spread_bps=st.max_spread_bps,
        position_usd=st.position_usd,
        stop_loss_pct=st.stop_loss_pct,
        take_profit_pct=st.take_profit_pct,
        stale_ms=st.stale_ms,
        liquid_spread_bps=st.liquid_spread_bps,
        liquid_min_size=st.liquid_min_size,
        max_hold_ms=int(st.max_hold_s * 1000) or None,
        link_id_prefix=st.link_id_prefix,
        flatten_on_halt=risk.flatten_on_exit,
        risk=RiskLimits(
            max_position_usd=risk.max_position_usd,
            max_daily_loss_usd=risk.max_daily_loss_usd,
            max_orders_per_minute=risk.max_orders_per_minute,
            cooldown_ms=int(st.cooldown_s * 1000),
            exchange_stop_margin_pct=risk.exchange_stop_margin_pct,
            exchange_stop_trigger=TriggerBy(risk.exchange_stop_trigger),
            taker_fee_rate=risk.taker_fee_rate,
        ),
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The settings flags given on the command line, as ``{"section.key": value}``."""
    out: dict[str, object] = {}
    for dest, key in _FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            out[key] = value
    return out


# ---------------------------------------------------------------- rendering


def _render_value(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, Secret):
        return f'"{value.masked()}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_settings(settings: Settings) -> str:
    """Every effective value, secrets masked, each with where it came from (TOML-like)."""
    lines: list[str] = []
    for section in _SECTIONS:
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        values = getattr(settings, section)
        rows = [
            (f"{f.name} = {_render_value(getattr(values, f.name))}", f"{section}.{f.name}")
            for f in attrs.fields(type(values))
        ]
        width = max(len(text) for text, _ in rows)
        for text, key in rows:
            origin = settings.sources.get(key, "default")
            lines.append(f"{text.ljust(width)}  # {origin}")
    return "\n".join(lines) + "\n"
