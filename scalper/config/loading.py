"""Loading: the four sources merged in precedence order, each value checked on arrival.

Also the engine's config made from the settings, and the flags of the command line.
"""

from __future__ import annotations

import argparse
import os
import stat
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..core.model import TriggerBy
from ..core.risk import RiskLimits
from ..core.strategy import EngineConfig
from .kinds import (
    _OTHER_SECRETS,
    BYBIT_HOSTS,
    LOOPBACK_HOSTS,
    Convert,
    SettingsError,
    _secret,
)
from .sections import (
    _SECTIONS,
    Settings,
)

#: The committed defaults file, when running from a checkout (absent when installed).
REPO_SETTINGS: Final = Path(__file__).resolve().parents[2] / "settings.toml"


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
    "api_secret_file": "exchange.api_secret_file",
}


def _check_remote(values: dict[str, dict[str, Any]], sources: dict[str, str]) -> None:
    """Read ``http.token_file``; refuse an exposed HTTP server without a token."""
    http = values["http"]
    if http["token_file"]:
        path = Path(http["token_file"]).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError("http.token_file", f"cannot read: {exc.strerror}") from None
        try:
            http["token"] = _secret()(text, True)
        except ValueError as exc:
            raise SettingsError("http.token_file", f"the token in the file {exc}") from None
        sources["http.token"] = f"file {path}"
    if http["port"] and http["host"] not in LOOPBACK_HOSTS and http["token"] is None:
        raise SettingsError(
            "http.token",
            f"required when http.host is not loopback (got {http['host']!r}): "
            "set SCALPER_HTTP__TOKEN or http.token_file",
        )
    telegram = values["telegram"]
    if telegram["token"] is not None and not telegram["chat_ids"]:
        raise SettingsError(
            "telegram.chat_ids", "required when telegram.token is set (the allow-list)"
        )


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
                if key in _OTHER_SECRETS and not secrets_allowed:
                    env = f"SCALPER_{section.upper()}__{name.upper()}"
                    raise SettingsError(key, f"secrets do not belong in {origin}; use {env}")
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

    def build(self, env: Mapping[str, str] | None = None) -> Settings:
        self._derive_urls()
        self._read_secret_file()
        self._resolve_data_paths(os.environ if env is None else env)
        self._cross_check()
        _check_remote(self.values, self.sources)
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

    # the API secret from a file; relative paths in the data dir
    def _read_secret_file(self) -> None:
        exchange = self.values["exchange"]
        path = exchange["api_secret_file"]
        if not path:
            return
        key = "exchange.api_secret_file"
        origin = self.sources[key]
        if self.sources["exchange.api_secret"] != "default":
            raise SettingsError(
                key,
                f"set either it or exchange.api_secret "
                f"(from {self.sources['exchange.api_secret']}), not both",
            )
        try:
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise SettingsError(key, f"{path} is not a file (from {origin})")
            if mode & 0o077:
                raise SettingsError(
                    key,
                    f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
                    f"chmod 600 {path} (from {origin})",
                )
            with open(path, encoding="utf-8") as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise SettingsError(key, f"no file at {path} (from {origin})") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SettingsError(key, f"cannot read {path}: {why} (from {origin})") from None
        try:
            exchange["api_secret"] = _secret()(raw.strip(), True)
        except ValueError as exc:
            raise SettingsError(key, f"the file's content {exc} (from {origin})") from None
        self.sources["exchange.api_secret"] = f"file {path} ({origin})"

    def _resolve_data_paths(self, env: Mapping[str, str]) -> None:
        data = self.values["data"]
        if data["dir"]:
            base = Path(data["dir"]).expanduser()
        elif Path.cwd().resolve() == REPO_SETTINGS.parent and REPO_SETTINGS.is_file():
            base = Path.cwd()  # a checkout: the journal stays next to the code, as before
            self.sources["data.dir"] += " (the working directory is the checkout)"
        else:
            xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
            base = Path(xdg).expanduser() / "scalper"
            self.sources["data.dir"] += " ($XDG_DATA_HOME/scalper)"
        data["dir"] = str(base.resolve())
        journal = self.values["journal"]
        path = Path(journal["path"]).expanduser()
        if journal["path"] == ":memory:":
            return
        if path.is_absolute():
            journal["path"] = str(path)
        elif self.sources["journal.path"].startswith("flag "):
            journal["path"] = str(Path.cwd() / path)  # typed at a shell: relative to it
        else:
            journal["path"] = str(Path(data["dir"]) / path)
            self.sources["journal.path"] += " (in data.dir)"

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
    return merger.build(os.environ if env is None else env)


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
