"""Settings: four sources merged, validated into frozen attrs classes.

The package: ``kinds`` (value converters, ``Secret``, ``SettingsError``),
``sections`` (one class per ``[section]``, ``Settings``), ``loading`` (the sources
merged, ``engine_config``), ``render`` (``check-config``).

Precedence, lowest first:

1. built-in defaults: the defaults of the section classes, which are also written out
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

from .kinds import (
    BYBIT_HOSTS,
    LOG_COMPRESSIONS,
    LOG_FORMATS,
    LOG_LEVELS,
    LOOPBACK_HOSTS,
    MODES,
    Convert,
    Secret,
    SettingsError,
)
from .loading import (
    REPO_SETTINGS,
    engine_config,
    load_settings,
    overrides_from_args,
)
from .render import (
    render_settings,
)
from .sections import (
    DataSettings,
    ExchangeSettings,
    ExecutionSettings,
    HttpSettings,
    JournalSettings,
    LogSettings,
    ReconcileSettings,
    RiskSettings,
    ScannerSettings,
    Settings,
    StrategySettings,
    TelegramSettings,
)

__all__ = [
    "BYBIT_HOSTS",
    "LOG_COMPRESSIONS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOOPBACK_HOSTS",
    "MODES",
    "REPO_SETTINGS",
    "Convert",
    "DataSettings",
    "ExchangeSettings",
    "ExecutionSettings",
    "HttpSettings",
    "JournalSettings",
    "LogSettings",
    "ReconcileSettings",
    "RiskSettings",
    "ScannerSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "StrategySettings",
    "TelegramSettings",
    "engine_config",
    "load_settings",
    "overrides_from_args",
    "render_settings",
]
