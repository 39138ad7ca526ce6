"""The settings sections: one frozen attrs class per ``[section]`` of settings.toml.

Each field carries its kind (``kinds``) and its one-line doc; ``Settings`` holds one
of each section and where every value came from.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from ..core.rules import (
    check_fee_rate,
)
from .kinds import (
    LOG_COMPRESSIONS,
    LOG_FORMATS,
    LOG_LEVELS,
    MODES,
    Secret,
    _bool,
    _choice,
    _decimal,
    _float,
    _host,
    _int,
    _int_list,
    _link_part,
    _log_retention,
    _log_rotation,
    _path,
    _secret,
    _setting,
    _str_list,
    _trigger,
    _url,
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
    # the secret read from a file only its owner can read
    api_secret_file: str = _setting(
        "", _path(), 'file holding the API secret (mode 0600); "" = none'
    )


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
    """``[strategy]``: the momentum scalper's parameters."""

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
    """``[execution]``: confirming orders (an accepted create is not a fill)."""

    poll_interval_ms: int = _setting(500, _int(10, 60_000), "REST order poll interval (ms)")
    confirm_timeout_s: float = _setting(10.0, _float(gt=0), "cancel an unconfirmed order after")


@attrs.frozen(kw_only=True)
class ReconcileSettings:
    """``[reconcile]``: position verification (the exchange is the source of truth)."""

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

    path: str = _setting("journal.sqlite3", _path(empty=False), "journal file (SQLite)")


@attrs.frozen(kw_only=True)
class DataSettings:
    """``[data]``: where the journal and recordings go when their paths are relative."""

    dir: str = _setting(
        "",
        _path(),
        '"" = the working directory in a checkout, else $XDG_DATA_HOME/scalper',
    )


@attrs.frozen(kw_only=True)
class LogSettings:
    """``[log]``: log lines."""

    level: str = _setting("INFO", _choice(LOG_LEVELS, upper=True), "TRACE ... CRITICAL")
    format: str = _setting("human", _choice(LOG_FORMATS), "human | json")
    file: str = _setting("", _path(), 'also write logs to this file; "" = no file')
    # history of log.file through loguru's own file sink
    rotation: str = _setting(
        "50 MB", _log_rotation(), 'new file at a size, an age or a time of day; "" = never'
    )
    retention: str = _setting(
        "14 days", _log_retention(), 'rotated files kept: an age or a count; "" = all'
    )
    compression: str = _setting(
        "gz", _choice(LOG_COMPRESSIONS), 'compress rotated files: gz, bz2, xz, zip; "" = no'
    )


# -- [http] and [telegram]: remote control (scalper/app/remote.py) -------------------

#: hosts that only this machine can reach: binding elsewhere needs ``http.token``


@attrs.frozen(kw_only=True)
class HttpSettings:
    """``[http]``: the bot's one HTTP server (metrics, API, dashboard)."""

    host: str = _setting(
        "127.0.0.1", _host(), "address to listen on (loopback: not reachable from outside)"
    )
    port: int = _setting(0, _int(0, 65535), "HTTP port (/metrics, /api, dashboard); 0 = off")
    token: Secret | None = _setting(  # noqa: RUF009
        None, _secret(), "bearer token for POST /api/* (SCALPER_HTTP__TOKEN); unset = refused"
    )
    token_file: str = _setting("", _path(), 'read http.token from this file; "" = none')


@attrs.frozen(kw_only=True)
class TelegramSettings:
    """``[telegram]``: notifications and commands through a Telegram bot."""

    token: Secret | None = _setting(  # noqa: RUF009
        None, _secret(), "Bot API token (SCALPER_TELEGRAM__TOKEN); unset = Telegram off"
    )
    chat_ids: tuple[int, ...] = _setting((), _int_list(), "chats allowed to command and notified")
    api_url: str = _setting("https://api.telegram.org", _url("http", "https"), "Bot API base URL")
    poll_timeout_s: int = _setting(30, _int(1, 50), "getUpdates long-poll timeout (s)")


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
        "data": DataSettings,
        "http": HttpSettings,
        "telegram": TelegramSettings,
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
    data: DataSettings = attrs.field(factory=DataSettings)
    http: HttpSettings = attrs.field(factory=HttpSettings)
    telegram: TelegramSettings = attrs.field(factory=TelegramSettings)
    sources: Mapping[str, str] = attrs.field(
        factory=lambda: types.MappingProxyType({}), eq=False, repr=False
    )

    def secrets(self) -> tuple[str, ...]:
        """The secret values, for the log redaction filter (``configure_logging``)."""
        held = (
            self.exchange.api_key,
            self.exchange.api_secret,
            self.http.token,
            self.telegram.token,
        )
        return tuple(s.reveal() for s in held if s)
