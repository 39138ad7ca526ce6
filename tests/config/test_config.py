"""Settings: defaults, the four sources and their precedence, every error, masking."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from scalper.cli import build_parser
from scalper.config import (
    REPO_SETTINGS,
    DataSettings,
    ExchangeSettings,
    JournalSettings,
    ScannerSettings,
    Secret,
    Settings,
    SettingsError,
    StrategySettings,
    load_settings,
    overrides_from_args,
    render_settings,
)

KEY = "k3y-abcdefghijklmnopqrstuv"
SECRET = "s3cr3t-ZYXWVUTSRQPONMLKJIHG"


def load(
    tmp_path: Path,
    config: str | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
    defaults: str | None = None,
) -> Settings:
    """Load with no repo file (unless ``defaults`` is given) and an explicit env."""
    defaults_path = None
    if defaults is not None:
        defaults_path = tmp_path / "settings.toml"
        defaults_path.write_text(defaults)
    config_path = None
    if config is not None:
        config_path = tmp_path / "local.toml"
        config_path.write_text(config)
    return load_settings(
        None if config_path is None else str(config_path),
        overrides=overrides,
        env=env or {},
        defaults_path=defaults_path,
    )


def error(tmp_path: Path, **kwargs: object) -> str:
    with pytest.raises(SettingsError) as info:
        load(tmp_path, **kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------- defaults


def defaults_resolved() -> Settings:
    """``Settings()`` with the data dir resolved as a run from the checkout does it."""
    cwd = Path.cwd()
    return attrs.evolve(
        Settings(),
        journal=JournalSettings(path=str(cwd / "journal.sqlite3")),
        data=DataSettings(dir=str(cwd)),
    )


def test_built_in_defaults_are_the_seeds_values(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings == defaults_resolved()
    assert settings.exchange.mode == "sim"
    assert settings.exchange.recv_window_ms == 5000
    assert settings.exchange.api_key is None
    assert settings.scanner.interval_s == 60.0
    assert settings.scanner.min_turnover == 10_000_000.0
    assert settings.scanner.switch_ratio == 1.2
    assert settings.scanner.exclude[:2] == ("BTCUSDT", "ETHUSDT")
    assert "USDCUSDT" in settings.scanner.exclude
    strategy = settings.strategy
    assert (strategy.window, strategy.min_ticks) == (100, 50)
    assert strategy.momentum_threshold == 0.001
    assert strategy.max_spread_bps == 20.0
    assert strategy.position_usd == Decimal(1000)
    assert (strategy.stop_loss_pct, strategy.take_profit_pct) == (0.5, 1.0)
    assert strategy.stale_ms == 500
    assert (strategy.liquid_spread_bps, strategy.liquid_min_size) == (10.0, 100.0)
    assert strategy.link_id_prefix == "scalp"
    assert settings.execution.poll_interval_ms == 500
    assert settings.execution.confirm_timeout_s == 10.0
    assert settings.reconcile.interval_s == 60.0
    assert settings.risk.flatten_on_exit is True
    assert settings.log.level == "INFO" and settings.log.format == "human"
    assert settings.http.port == 0  # off
    assert settings.http.host == "127.0.0.1"  # never reachable from outside by default
    assert settings.http.token is None and settings.telegram.token is None
    assert set(settings.sources.values()) == {
        "default",
        "default (sim: the built-in exchange)",
        "default (in data.dir)",
        "default (the working directory is the checkout)",
    }


def test_repo_settings_toml_equals_the_built_in_defaults() -> None:
    assert REPO_SETTINGS.is_file()
    from_file = load_settings(env={})
    assert from_file == defaults_resolved()
    assert from_file.sources["scanner.interval_s"] == "settings.toml"


def test_repo_settings_toml_lists_every_key_but_the_secrets() -> None:
    data = tomllib.loads(REPO_SETTINGS.read_text())
    for name in attrs.fields_dict(Settings):
        if name == "sources":
            continue
        section = getattr(Settings(), name)
        expected = set(attrs.fields_dict(type(section)))
        if name == "exchange":
            expected -= {"api_key", "api_secret"}
        if name in ("http", "telegram"):
            expected -= {"token"}
        assert set(data[name]) == expected, name


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALPER_SCANNER__INTERVAL_S", "7")
    settings = load_settings(defaults_path=None)
    assert settings.scanner.interval_s == 7.0


# ---------------------------------------------------------------- precedence


LAYERS = {
    "defaults": "[scanner]\ninterval_s = 10\n",
    "config": "[scanner]\ninterval_s = 20\n",
    "env": {"SCALPER_SCANNER__INTERVAL_S": "30"},
    "overrides": {"scanner.interval_s": "40"},
}


@pytest.mark.parametrize(
    ("given", "expected", "origin"),
    [
        ((), 60.0, "default"),
        (("defaults",), 10.0, "settings.toml"),
        (("defaults", "config"), 20.0, "--config {tmp}/local.toml"),
        (("config",), 20.0, "--config {tmp}/local.toml"),
        (("defaults", "config", "env"), 30.0, "env SCALPER_SCANNER__INTERVAL_S"),
        (("defaults", "env"), 30.0, "env SCALPER_SCANNER__INTERVAL_S"),
        (("defaults", "config", "env", "overrides"), 40.0, "override"),
        (("overrides",), 40.0, "override"),
    ],
)
def test_precedence_of_the_four_sources(
    tmp_path: Path, given: tuple[str, ...], expected: float, origin: str
) -> None:
    kwargs = {name: LAYERS[name] for name in given}
    settings = load(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert settings.scanner.interval_s == expected
    assert settings.sources["scanner.interval_s"] == origin.format(tmp=tmp_path)
    # everything else stays at its default
    assert settings.scanner.switch_ratio == 1.2


def test_flags_override_env_for_exchange_keys(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["check-config", "--mode", "testnet", "--api-key", "flagkey", "--api-secret", "flagsec"]
    )
    settings = load(
        tmp_path,
        env={"BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET, "SCALPER_EXCHANGE__MODE": "demo"},
        overrides=overrides_from_args(args),
    )
    assert settings.exchange.mode == "testnet"
    assert settings.exchange.api_key == Secret("flagkey")
    assert settings.exchange.api_secret is not None
    assert settings.exchange.api_secret.reveal() == "flagsec"
    assert settings.sources["exchange.mode"] == "flag --mode"
    assert settings.sources["exchange.api_key"] == "flag --api-key"


def test_secrets_from_env_and_config_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        config=f'[exchange]\nmode = "demo"\napi_key = "{KEY}"\n',
        env={"BYBIT_API_SECRET": SECRET, "BYBIT_API_KEY": ""},  # empty counts as unset
    )
    assert settings.exchange.api_key is not None and settings.exchange.api_key.reveal() == KEY
    assert settings.sources["exchange.api_key"] == f"--config {tmp_path}/local.toml"
    assert settings.sources["exchange.api_secret"] == "env BYBIT_API_SECRET"
    assert settings.secrets() == (KEY, SECRET)


def test_overrides_from_args_maps_every_flag() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--mode=demo",
            "--rest-url=http://127.0.0.1:1",
            "--ws-public-url=ws://127.0.0.1:1/p",
            "--ws-private-url=ws://127.0.0.1:1/q",
            "--api-key=k",
            "--api-secret=s",
            "--journal=j.sqlite3",
            "--log-level=debug",
            "--log-format=json",
        ]
    )
    assert overrides_from_args(args) == {
        "exchange.mode": "demo",
        "exchange.rest_url": "http://127.0.0.1:1",
        "exchange.ws_public_url": "ws://127.0.0.1:1/p",
        "exchange.ws_private_url": "ws://127.0.0.1:1/q",
        "exchange.api_key": "k",
        "exchange.api_secret": "s",
        "journal.path": "j.sqlite3",
        "log.level": "debug",
        "log.format": "json",
    }
    assert overrides_from_args(build_parser().parse_args(["check-config"])) == {}


def test_flag_values_are_applied(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["run", "--rest-url=http://127.0.0.1:9/", "--journal=x.db", "--log-level=debug"]
    )
    settings = load(tmp_path, overrides=overrides_from_args(args))
    assert settings.exchange.rest_url == "http://127.0.0.1:9"  # trailing slash dropped
    assert settings.journal.path == str(Path.cwd() / "x.db")  # a flag: relative to the shell
    assert settings.log.level == "DEBUG"
    assert settings.sources["journal.path"] == "flag --journal"


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    settings = load(tmp_path, overrides={"exchange.mode": None})
    assert settings.exchange.mode == "sim"


# ---------------------------------------------------------------- env parsing


@pytest.mark.parametrize(
    ("var", "raw", "attr", "expected"),
    [
        (
            "SCALPER_SCANNER__EXCLUDE",
            "btcusdt, SOLUSDT ,",
            ("scanner", "exclude"),
            ("BTCUSDT", "SOLUSDT"),
        ),
        (
            "SCALPER_SCANNER__EXCLUDE",
            '["XUSDT", "yusdt"]',
            ("scanner", "exclude"),
            ("XUSDT", "YUSDT"),
        ),
        ("SCALPER_SCANNER__EXCLUDE", "", ("scanner", "exclude"), ()),
        ("SCALPER_RISK__FLATTEN_ON_EXIT", "false", ("risk", "flatten_on_exit"), False),
        ("SCALPER_RISK__FLATTEN_ON_EXIT", "0", ("risk", "flatten_on_exit"), False),
        ("SCALPER_RISK__FLATTEN_ON_EXIT", "Yes", ("risk", "flatten_on_exit"), True),
        ("SCALPER_RISK__FLATTEN_ON_EXIT", "on", ("risk", "flatten_on_exit"), True),
        ("SCALPER_STRATEGY__MOMENTUM_THRESHOLD", "2e-3", ("strategy", "momentum_threshold"), 0.002),
        ("SCALPER_SCANNER__MIN_TURNOVER", "5_000_000", ("scanner", "min_turnover"), 5e6),
        ("SCALPER_STRATEGY__WINDOW", " 200 ", ("strategy", "window"), 200),
        (
            "SCALPER_STRATEGY__POSITION_USD",
            "250.50",
            ("strategy", "position_usd"),
            Decimal("250.50"),
        ),
        ("SCALPER_LOG__LEVEL", "warning", ("log", "level"), "WARNING"),
        ("SCALPER_LOG__FILE", "/tmp/x.log", ("log", "file"), "/tmp/x.log"),
        ("scalper_log__format", "json", ("log", "format"), "json"),
        ("SCALPER_HTTP__PORT", "9100", ("http", "port"), 9100),
        ("SCALPER_HTTP__HOST", " 0.0.0.0 ", ("http", "host"), "0.0.0.0"),
        ("SCALPER_HTTP__HOST", "::1", ("http", "host"), "::1"),
        ("SCALPER_TELEGRAM__CHAT_IDS", "12, -345", ("telegram", "chat_ids"), (12, -345)),
        ("SCALPER_TELEGRAM__POLL_TIMEOUT_S", "5", ("telegram", "poll_timeout_s"), 5),
    ],
)
def test_env_values_are_parsed_to_the_keys_type(
    tmp_path: Path, var: str, raw: str, attr: tuple[str, str], expected: object
) -> None:
    settings = load(tmp_path, env={var: raw})
    value = getattr(getattr(settings, attr[0]), attr[1])
    assert value == expected
    assert type(value) is type(expected)


def test_unrelated_env_vars_are_ignored(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"SCALPER_HOME": "/x", "PATH": "/bin", "BYBIT_OTHER": "1"})
    assert settings == defaults_resolved()


def test_toml_float_money_is_exact(tmp_path: Path) -> None:
    settings = load(tmp_path, config="[strategy]\nposition_usd = 100.1\n")
    assert settings.strategy.position_usd == Decimal("100.1")


# ---------------------------------------------------------------- derived URLs


@pytest.mark.parametrize(
    ("mode", "rest", "public", "private"),
    [
        (
            "live",
            "https://api.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream.bybit.com/v5/private",
        ),
        (
            "testnet",
            "https://api-testnet.bybit.com",
            "wss://stream-testnet.bybit.com/v5/public/linear",
            "wss://stream-testnet.bybit.com/v5/private",
        ),
        (
            "demo",
            "https://api-demo.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream-demo.bybit.com/v5/private",
        ),
    ],
)
def test_urls_derive_from_the_mode(
    tmp_path: Path, mode: str, rest: str, public: str, private: str
) -> None:
    env = {"SCALPER_EXCHANGE__MODE": mode, "BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET}
    exchange = load(tmp_path, env=env).exchange
    assert (exchange.rest_url, exchange.ws_public_url, exchange.ws_private_url) == (
        rest,
        public,
        private,
    )


def test_explicit_url_wins_over_the_mode(tmp_path: Path) -> None:
    env = {
        "SCALPER_EXCHANGE__MODE": "testnet",
        "SCALPER_EXCHANGE__REST_URL": "http://127.0.0.1:8765",
        "BYBIT_API_KEY": KEY,
        "BYBIT_API_SECRET": SECRET,
    }
    settings = load(tmp_path, env=env)
    assert settings.exchange.rest_url == "http://127.0.0.1:8765"
    assert settings.exchange.ws_public_url == "wss://stream-testnet.bybit.com/v5/public/linear"
    assert settings.sources["exchange.ws_public_url"] == "Bybit testnet host"


def test_sim_mode_keeps_urls_empty(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.exchange.rest_url == ""
    assert settings.sources["exchange.rest_url"] == "default (sim: the built-in exchange)"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("config", "message"),
    [
        # bad types
        ('[scanner]\ninterval_s = "fast"\n', "scanner.interval_s: expected a number, got 'fast'"),
        ("[strategy]\nwindow = 10.5\n", "strategy.window: expected an integer, got 10.5"),
        ("[strategy]\nwindow = true\n", "strategy.window: expected an integer, got True"),
        ('[risk]\nflatten_on_exit = "yes"\n', "risk.flatten_on_exit: expected true or false"),
        ("[journal]\npath = 5\n", "journal.path: expected a string, got 5"),
        ("[scanner]\nexclude = [1, 2]\n", "scanner.exclude: expected a list of strings"),
        ('[scanner]\nexclude = "BTCUSDT"\n', "scanner.exclude: expected a list of strings"),
        ('[scanner]\nexclude = ["A", " "]\n', "scanner.exclude: list items must not be empty"),
        ('[risk]\nmax_daily_loss_usd = "100"\n', "risk.max_daily_loss_usd: expected a number"),
        ("[scanner]\ninterval_s = nan\n", "scanner.interval_s: must be a finite number"),
        ("[risk]\nmax_position_usd = inf\n", "risk.max_position_usd: must be a finite number"),
        ("[exchange]\napi_key = 12345\n", "exchange.api_key: expected a string, got a int"),
        ('[exchange]\napi_key = ""\n', "exchange.api_key: must not be empty"),
        ('[exchange]\napi_key = "a b"\n', "exchange.api_key: must not contain spaces"),
        # ranges
        ("[scanner]\ninterval_s = 0\n", "scanner.interval_s: must be > 0, got 0"),
        ("[scanner]\nswitch_ratio = 0.5\n", "scanner.switch_ratio: must be >= 1, got 0.5"),
        ("[scanner]\nmin_turnover = -1\n", "scanner.min_turnover: must be >= 0, got -1"),
        ("[exchange]\nrecv_window_ms = 0\n", "exchange.recv_window_ms: must be >= 1, got 0"),
        ("[exchange]\nrecv_window_ms = 60001\n", "exchange.recv_window_ms: must be <= 60000"),
        ("[strategy]\nstop_loss_pct = 101\n", "strategy.stop_loss_pct: must be <= 100, got 101"),
        ("[strategy]\nposition_usd = 0\n", "strategy.position_usd: must be > 0, got 0"),
        ("[strategy]\nmin_ticks = 101\n", "strategy.min_ticks: must be <= strategy.window (100)"),
        (
            "[risk]\nmax_position_usd = 999\n",
            "risk.max_position_usd: must be >= strategy.position_usd (1000), got 999",
        ),
        ('[strategy]\nlink_id_prefix = "a.b"\n', "strategy.link_id_prefix: must be 1-12"),
        ('[strategy]\nlink_id_prefix = ""\n', "strategy.link_id_prefix: must be 1-12"),
        # enums
        ('[exchange]\nmode = "paper"\n', "exchange.mode: expected one of sim, demo, testnet, live"),
        ("[exchange]\nmode = 1\n", "exchange.mode: expected one of sim, demo, testnet, live"),
        ('[log]\nformat = "xml"\n', "log.format: expected one of human, json, got 'xml'"),
        ('[log]\nlevel = "LOUD"\n', "log.level: expected one of TRACE, DEBUG, INFO"),
        ("[http]\nport = -1\n", "http.port: must be >= 0, got -1"),
        ("[http]\nport = 65536\n", "http.port: must be <= 65535, got 65536"),
        ('[http]\nport = "9100"\n', "http.port: expected an integer, got '9100'"),
        ('[http]\nhost = ""\n', "http.host: must not be empty"),
        ('[http]\nhost = "http://x"\n', "http.host: expected a host name or IP address"),
        ('[http]\nhost = "a b"\n', "http.host: expected a host name or IP address"),
        ("[http]\nhost = 127\n", "http.host: expected a host name or IP address, got 127"),
        # URLs
        ('[exchange]\nrest_url = "ftp://x"\n', "exchange.rest_url: expected http://HOST"),
        ('[exchange]\nrest_url = "wss://x"\n', "exchange.rest_url: expected http://HOST"),
        ('[exchange]\nrest_url = "http://"\n', "exchange.rest_url: expected http://HOST"),
        ('[exchange]\nrest_url = "127.0.0.1:80"\n', "exchange.rest_url: expected http://HOST"),
        ('[exchange]\nrest_url = "http://a b"\n', "exchange.rest_url: a URL may not contain"),
        ("[exchange]\nrest_url = 80\n", "exchange.rest_url: expected a URL string, got 80"),
        ('[exchange]\nws_public_url = "https://x"\n', "exchange.ws_public_url: expected ws://HOST"),
        ('[exchange]\nws_private_url = "x"\n', "exchange.ws_private_url: expected ws://HOST"),
        # unknown names
        ("[scanner]\ninterval = 5\n", "scanner.interval: unknown key (in --config "),
        ("[scaner]\ninterval_s = 5\n", "scaner: unknown section (in --config "),
        ("scanner = 5\n", "scanner: expected a [scanner] table"),
    ],
)
def test_bad_values_in_a_config_file(tmp_path: Path, config: str, message: str) -> None:
    assert error(tmp_path, config=config).startswith(message)


def test_error_names_the_source(tmp_path: Path) -> None:
    text = error(tmp_path, config="[scanner]\ninterval_s = 0\n")
    assert text == f"scanner.interval_s: must be > 0, got 0 (from --config {tmp_path}/local.toml)"


def test_bad_toml_file(tmp_path: Path) -> None:
    text = error(tmp_path, config="[scanner\ninterval_s = 5\n")
    assert text.startswith(f"--config {tmp_path}/local.toml: invalid TOML: ")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[log]\nfile = "\xff"\n')
    with pytest.raises(SettingsError, match="invalid TOML"):
        load_settings(str(path), env={}, defaults_path=None)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as info:
        load_settings(str(missing), env={}, defaults_path=None)
    assert str(info.value) == f"--config {missing}: file not found"


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="is a directory"):
        load_settings(str(tmp_path), env={}, defaults_path=None)


def test_unreadable_config_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = tmp_path / "secret.toml"
    path.write_text("")
    path.chmod(0)
    with pytest.raises(SettingsError, match="cannot read: Permission denied"):
        load_settings(str(path), env={}, defaults_path=None)


def test_bad_committed_settings_file(tmp_path: Path) -> None:
    text = error(tmp_path, defaults="[log]\nformat = 'xml'\n")
    assert text.startswith(
        "log.format: expected one of human, json, got 'xml' (from settings.toml)"
    )


def test_secrets_refused_in_the_committed_file(tmp_path: Path) -> None:
    text = error(tmp_path, defaults=f'[exchange]\napi_secret = "{SECRET}"\n')
    assert text.startswith("exchange.api_secret: secrets do not belong in the committed")
    assert SECRET not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SCALPER_SCANNER__INTERVAL_S": "abc"},
            "scanner.interval_s: expected a number, got 'abc'",
        ),
        ({"SCALPER_SCANNER__INTERVAL_S": "-5"}, "scanner.interval_s: must be > 0, got -5.0"),
        ({"SCALPER_STRATEGY__WINDOW": "1.5"}, "strategy.window: expected an integer, got '1.5'"),
        (
            {"SCALPER_RISK__FLATTEN_ON_EXIT": "maybe"},
            "risk.flatten_on_exit: expected true or false",
        ),
        ({"SCALPER_STRATEGY__POSITION_USD": "lots"}, "strategy.position_usd: expected a number"),
        ({"SCALPER_SCANNER__EXCLUDE": '["A",'}, "scanner.exclude: expected a list like"),
        ({"SCALPER_SCANNER__EXCLUDE": "[1]"}, "scanner.exclude: expected a list of strings"),
        (
            {"SCALPER_SCANNER__NOPE": "1"},
            "scanner.nope: unknown key (in env SCALPER_SCANNER__NOPE)",
        ),
        ({"SCALPER_NOPE__X": "1"}, "nope: unknown section (in env SCALPER_NOPE__X)"),
        ({"SCALPER_EXCHANGE__MODE": "mainnet"}, "exchange.mode: expected one of"),
        ({"SCALPER_EXCHANGE__API_KEY": KEY}, "exchange.api_key: set it with BYBIT_API_KEY"),
        ({"SCALPER_EXCHANGE__MODE": "demo"}, "exchange.api_key: required in mode 'demo'"),
        (
            {"SCALPER_EXCHANGE__MODE": "live", "BYBIT_API_KEY": KEY},
            "exchange.api_secret: required in mode 'live'",
        ),
        ({"BYBIT_API_KEY": "has space"}, "exchange.api_key: must not contain spaces"),
    ],
)
def test_bad_values_in_the_environment(tmp_path: Path, env: dict[str, str], message: str) -> None:
    text = error(tmp_path, env=env)
    assert text.startswith(message)
    assert KEY not in text


def test_bad_flag_value(tmp_path: Path) -> None:
    text = error(tmp_path, overrides={"exchange.rest_url": "localhost:1"})
    assert text.startswith("exchange.rest_url: expected http://HOST")
    assert text.endswith("(from flag --rest-url)")


def test_unknown_override_key(tmp_path: Path) -> None:
    assert error(tmp_path, overrides={"scanner.bogus": "1"}).startswith(
        "scanner.bogus: unknown key (in override)"
    )


def test_settings_error_carries_key_and_reason() -> None:
    exc = SettingsError("a.b", "why")
    assert (str(exc), exc.key, exc.why) == ("a.b: why", "a.b", "why")


# ---------------------------------------------------------------- classes and secrets


def test_sections_validate_when_built_directly() -> None:
    with pytest.raises(ValueError, match="interval_s: must be > 0"):
        ScannerSettings(interval_s=0)
    with pytest.raises(ValueError, match="link_id_prefix: must be 1-12"):
        StrategySettings(link_id_prefix="x" * 17)
    assert (
        attrs.evolve(Settings(), scanner=ScannerSettings(interval_s=0.5)).scanner.interval_s == 0.5
    )


def test_secret_never_shows_itself() -> None:
    secret = Secret(SECRET)
    assert secret.reveal() == SECRET
    for text in (repr(secret), str(secret), f"{secret}", secret.masked()):
        assert SECRET not in text
        assert SECRET[:-2] not in text
    assert secret.masked() == "****" + SECRET[-2:]
    assert Secret("short").masked() == "****"
    assert secret == Secret(SECRET) and secret != Secret("other") and secret != SECRET
    assert hash(secret) == hash(Secret(SECRET))
    assert bool(secret) and not Secret("")
    exchange = ExchangeSettings(api_key=secret, api_secret=Secret(SECRET + "x"))
    assert SECRET[:-2] not in repr(exchange)
    assert SECRET[:-2] not in repr(Settings(exchange=exchange))


def test_check_config_masks_secrets_and_says_where_values_came_from(tmp_path: Path) -> None:
    env = {
        "BYBIT_API_KEY": KEY,
        "BYBIT_API_SECRET": SECRET,
        "SCALPER_SCANNER__INTERVAL_S": "5",
        "SCALPER_EXCHANGE__MODE": "testnet",
    }
    settings = load(
        tmp_path,
        config="[strategy]\nwindow = 200\n",
        env=env,
        overrides={"log.format": "json"},
    )
    text = render_settings(settings)
    assert KEY[:-2] not in text
    assert SECRET[:-2] not in text
    lines: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            lines[f"{section}.{line.split('=')[0].strip()}"] = line
            lines.setdefault(line.split("=")[0].strip(), line)
    assert lines["api_key"].endswith("# env BYBIT_API_KEY")
    assert '"****' in lines["api_key"]
    assert lines["api_secret"].endswith("# env BYBIT_API_SECRET")
    assert lines["scanner.interval_s"].startswith("interval_s = 5.0 ")
    assert lines["scanner.interval_s"].endswith("# env SCALPER_SCANNER__INTERVAL_S")
    assert lines["reconcile.interval_s"].endswith("# default")
    assert lines["window"].endswith(f"# --config {tmp_path}/local.toml")
    assert lines["format"].startswith('format = "json"')
    assert lines["format"].endswith("# flag --log-format")
    assert lines["rest_url"].endswith("# Bybit testnet host")
    assert lines["exclude"].startswith('exclude = ["BTCUSDT", "ETHUSDT"')
    assert lines["flatten_on_exit"].startswith("flatten_on_exit = true ")
    assert lines["position_usd"].startswith("position_usd = 1000 ")
    assert lines["switch_ratio"].endswith("# default")
    sections = ("exchange", "scanner", "strategy", "execution", "reconcile", "risk", "log")
    for section in (*sections, "http", "telegram"):
        assert f"[{section}]" in text


def test_rendered_settings_parse_back_as_toml(tmp_path: Path) -> None:
    settings = load(tmp_path, config='[log]\nfile = "a \\"b\\" \\\\c"\n')
    data = tomllib.loads(render_settings(settings).replace("(not set)", '""'))
    assert data["log"]["file"] == 'a "b" \\c'
    assert data["strategy"]["window"] == 100


def test_render_of_a_default_settings_object() -> None:
    text = render_settings(Settings())
    assert "api_key = (not set)" in text
    assert "# default" in text


# ---------------------------------------------------------------- the command line


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SCALPER_", "BYBIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "scalper.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_with_a_bad_env_value_exits_2_with_one_line() -> None:
    result = run_cli("check-config", env={"SCALPER_SCANNER__INTERVAL_S": "soon"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: scanner.interval_s: ")
    assert "Traceback" not in result.stderr


def test_check_config_prints_masked_settings() -> None:
    result = run_cli(
        "check-config",
        "--mode",
        "demo",
        env={"BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert KEY[:-2] not in result.stdout and SECRET[:-2] not in result.stdout
    assert 'mode = "demo"' in result.stdout
    assert "# flag --mode" in result.stdout


# ---------------------------------------------------------------- [http] and [telegram]


def test_http_token_from_env_is_a_secret_and_redacted(tmp_path: Path) -> None:
    token = "http-token-0123456789abcdef"
    settings = load(tmp_path, env={"SCALPER_HTTP__TOKEN": token, "SCALPER_HTTP__PORT": "8080"})
    assert settings.http.token is not None and settings.http.token.reveal() == token
    assert token not in repr(settings) and token not in render_settings(settings)
    assert token in settings.secrets()


def test_http_token_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("  file-token-abcdefghijkl\n")
    settings = load(tmp_path, config=f'[http]\ntoken_file = "{tmp_path}/tok"\n')
    assert settings.http.token is not None
    assert settings.http.token.reveal() == "file-token-abcdefghijkl"
    assert settings.sources["http.token"] == f"file {tmp_path}/tok"


def test_http_token_file_missing_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^http\.token_file: cannot read"):
        load(tmp_path, config=f'[http]\ntoken_file = "{tmp_path}/nope"\n')


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_http_on_a_public_address_without_a_token_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(SettingsError, match=r"^http\.token: required when http\.host"):
        load(tmp_path, env={"SCALPER_HTTP__HOST": host, "SCALPER_HTTP__PORT": "8080"})
    # with a token it starts
    env = {"SCALPER_HTTP__HOST": host, "SCALPER_HTTP__PORT": "8080", "SCALPER_HTTP__TOKEN": "t0k"}
    assert load(tmp_path, env=env).http.host == host


def test_secrets_in_the_committed_file_are_refused(tmp_path: Path) -> None:
    committed = tmp_path / "settings.toml"
    committed.write_text('[telegram]\ntoken = "123:abc"\n')
    with pytest.raises(SettingsError, match=r"^telegram\.token: secrets do not belong"):
        load_settings(env={}, defaults_path=committed)


def test_telegram_token_needs_an_allow_list(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^telegram\.chat_ids: required"):
        load(tmp_path, env={"SCALPER_TELEGRAM__TOKEN": "123:abc"})
    with pytest.raises(SettingsError, match=r"^telegram\.chat_ids: expected a list of integers"):
        load(tmp_path, env={"SCALPER_TELEGRAM__CHAT_IDS": "12,abc"})


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_public_http_without_a_token_exits_2_naming_the_key(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scalper.cli import main

    monkeypatch.setenv("SCALPER_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("SCALPER_HTTP__PORT", "8080")
    monkeypatch.delenv("SCALPER_HTTP__TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        main([command])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: http.token: required when http.host is not loopback")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "key",
    ["exchange.api_secret_file", "journal.path", "data.dir", "log.file", "http.token_file"],
)
def test_a_path_with_a_nul_byte_is_a_bad_setting_naming_its_key(tmp_path: Path, key: str) -> None:
    # the operating system refuses such a path with a bare ValueError far from the
    # setting (found by the deep settings fuzz); it must be the one-line error instead
    section, name = key.split(".")
    text = error(tmp_path, config=f'[{section}]\n{name} = "a\\u0000b"\n')
    assert text.startswith(f"{key}:") and "NUL" in text, text
