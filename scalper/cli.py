"""The ``scalper`` command line: parse arguments, load settings, hand over to a subsystem.

This module only routes. Each subcommand's work lives in its own package and is
imported lazily, so ``scalper check-config`` does not pay for the simulator's imports
and a missing optional piece fails only the command that needs it.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad settings (one line on
stderr naming the key, never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


_MODES = ["sim", "demo", "testnet", "live"]
_LEVELS = ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
#: printed when a key or secret is given as a flag: argv is public on a Unix machine
_ARGV_WARNING = (
    "warning: {flag} on the command line is visible to other users (ps, /proc) and "
    "kept in shell history; prefer BYBIT_API_KEY / BYBIT_API_SECRET or --api-secret-file\n"
)


#: settings flags that take one value: (flag, metavar, help), in ``--help`` order
_SETTINGS_VALUE_FLAGS = (
    ("--rest-url", "URL", "exchange.rest_url: REST base URL"),
    ("--ws-public-url", "URL", "exchange.ws_public_url: public WebSocket"),
    ("--ws-private-url", "URL", "exchange.ws_private_url: private WebSocket"),
    ("--api-key", "KEY", "API key (visible to other users: prefer BYBIT_API_KEY)"),
    ("--api-secret", "SECRET", "API secret (visible to other users: prefer --api-secret-file)"),
    ("--api-secret-file", "FILE", "read the API secret from FILE (must be chmod 600)"),
    ("--journal", "PATH", "journal.path: journal file (SQLite)"),
    ("--log-level", "LEVEL", "log.level: " + " | ".join(_LEVELS)),
)
#: the report's window flags, after ``--config``
_REPORT_VALUE_FLAGS = (
    ("--journal", "PATH", "journal file (default: journal.path, as for run)"),
    ("--since", "DATE", "from this UTC date or time (YYYY-MM-DD[THH:MM])"),
    ("--until", "DATE", "before this UTC date or time (a date: its end)"),
)


def _add_value_flags(
    parser: argparse.ArgumentParser, flags: Sequence[tuple[str, str, str]]
) -> None:
    """Options that take one value, each ``(flag, metavar, help)``."""
    for flag, metavar, text in flags:
        parser.add_argument(flag, metavar=metavar, help=text)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that override settings (the highest-precedence source)."""
    parser.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    parser.add_argument("--mode", choices=_MODES, help="exchange.mode: where to trade")
    _add_value_flags(parser, _SETTINGS_VALUE_FLAGS)
    parser.add_argument(
        "--log-format", choices=["human", "json"], help="log.format: json = JSON lines"
    )


def _warn_argv_secrets(args: argparse.Namespace) -> None:
    for dest, flag in (("api_key", "--api-key"), ("api_secret", "--api-secret")):
        if getattr(args, dest, None):
            sys.stderr.write(_ARGV_WARNING.format(flag=flag))


def _cmd_check_config(args: argparse.Namespace) -> int:
    from .config import render_settings

    settings = _load_settings(args)
    sys.stdout.write(render_settings(settings))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    from .app.main import main_run

    return main_run(
        settings,
        live=args.live,
        duration_s=args.duration,
        panel=not args.no_panel,
        reset_halt=args.reset_halt,
    )


def _cmd_exchange(args: argparse.Namespace) -> int:
    from .sim.cli import main_exchange

    return main_exchange(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main_bench

    return main_bench(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import main_report

    # The journal is found exactly as ``run`` writes it: the same four sources. A
    # report never connects, so the keys a real mode requires are not asked for.
    return main_report(args, _load_settings(args, extra={"exchange.mode": "sim"}))


def _cmd_ctl(args: argparse.Namespace) -> int:
    from .ctl import main_ctl

    return main_ctl(args, lambda: _load_settings(args))


def _cmd_record(args: argparse.Namespace) -> int:
    from .replay.cli import main_record

    return main_record(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .replay.cli import main_replay

    return main_replay(args)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from .research.backtest import main_backtest

    return main_backtest(args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .research.sweep import main_sweep

    return main_sweep(args)


def _cmd_import_bybit(args: argparse.Namespace) -> int:
    from .research.import_bybit import main_import

    return main_import(args)


def _load_settings(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, extra: dict[str, object] | None = None
):
    """Load settings from all four sources; exit 2 with one line on a bad value."""
    from .config import SettingsError, load_settings, overrides_from_args

    _warn_argv_secrets(args)
    overrides = {**overrides_from_args(args), **(extra or {})}
    try:
        return load_settings(config_path=args.config, overrides=overrides)
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scalper")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and shell completion)."""
    parser = argparse.ArgumentParser(
        prog="scalper", description="Bybit v5 scalping bot for linear USDT perpetuals."
    )
    parser.add_argument(
        "--version", action="version", version=f"scalper {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    run = sub.add_parser("run", help="run the bot (no keys: against the built-in exchange)")
    _add_settings_flags(run)
    run.add_argument("--live", action="store_true", help="required to trade on mainnet")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop gracefully after")
    run.add_argument(
        "--no-panel",
        action="store_true",
        help="in a terminal, plain log lines instead of the live panel",
    )
    run.add_argument(
        "--reset-halt",
        action="store_true",
        help="lift a daily-loss halt restored from the journal (journaled: who, where, when)",
    )
    run.set_defaults(handler=_cmd_run)

    check = sub.add_parser("check-config", help="print effective settings (secrets masked)")
    _add_settings_flags(check)
    check.set_defaults(handler=_cmd_check_config)

    exchange = sub.add_parser("exchange", help="serve the simulated Bybit exchange")
    exchange.add_argument("--host", default="127.0.0.1", help="address to listen on")
    exchange.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    exchange.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")
    exchange.add_argument("--symbols", nargs="*", metavar="SYMBOL", help="symbols to list")
    exchange.add_argument("--rate", type=float, metavar="MSGS_PER_S", help="public msgs/s")
    exchange.add_argument("--api-key", default="sim-key", help="the key it accepts")
    exchange.add_argument("--api-secret", default="sim-secret", help="the secret it accepts")
    exchange.add_argument(
        "--hedge-mode", action="store_true", help="the account is in hedge mode (positionIdx 1/2)"
    )
    exchange.set_defaults(handler=_cmd_exchange)

    bench = sub.add_parser("bench", help="hot path vs naive, pybit and receive-only, as ratios")
    bench.add_argument("--json", action="store_true", help="the same figures as one JSON object")
    bench.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    bench.set_defaults(handler=_cmd_bench)

    report = sub.add_parser("report", help="trades, PnL and equity chart from the journal")
    report.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    _add_value_flags(report, _REPORT_VALUE_FLAGS)
    report.add_argument(
        "--format", choices=["text", "json", "csv"], default="text", help="output format"
    )
    report.add_argument(
        "--plot", metavar="FILE.png", help="draw the equity chart (needs the plot extra)"
    )
    report.set_defaults(handler=_cmd_report)

    ctl = sub.add_parser("ctl", help="control a running bot over its HTTP API")
    ctl.add_argument(
        "action",
        choices=["status", "pnl", "pause", "resume", "flatten", "stop"],
        help="status | pnl: read; pause | resume | flatten | stop: command (needs the token)",
    )
    ctl.add_argument("--url", metavar="URL", help="default: http://<http.host>:<http.port>")
    ctl.add_argument("--token", metavar="T", help="default: http.token (SCALPER_HTTP__TOKEN)")
    ctl.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    ctl.set_defaults(handler=_cmd_ctl)

    record = sub.add_parser("record", help="capture a symbol's public stream to a file")
    record.add_argument("--symbol", required=True, metavar="SYMBOL", help="e.g. SOLUSDT")
    record.add_argument("--seconds", type=float, metavar="N", help="stop after N s (else Ctrl+C)")
    record.add_argument("--out", metavar="FILE", help="default: SYMBOL-<UTC time>.jsonl")
    record.add_argument("--tick-size", metavar="TICK", help="if instruments-info is unreachable")
    record.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    record.add_argument("--mode", choices=_MODES, help="exchange.mode: whose stream")
    record.add_argument("--rest-url", metavar="URL", help="exchange.rest_url")
    record.add_argument("--ws-public-url", metavar="URL", help="exchange.ws_public_url")
    record.add_argument("--log-level", metavar="LEVEL", help="log.level")
    record.set_defaults(handler=_cmd_record)

    replay = sub.add_parser("replay", help="replay a recording through the bot, paced (= backtest)")
    replay.add_argument("file", metavar="FILE", help="a recording made by scalper record")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="X", help="X times real time")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no waiting")
    replay.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    replay.add_argument("--verbose", action="store_true", help="also print the engine's logs")
    replay.add_argument("--log-level", metavar="LEVEL", help="log.level")
    replay.set_defaults(handler=_cmd_replay)

    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument(
        "shell", choices=["bash", "zsh"], help='eval "$(scalper completion bash)"'
    )
    completion.set_defaults(handler=_cmd_completion)
    _add_research_commands(sub)
    return parser


def _add_research_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``import-bybit``, ``backtest`` and ``sweep`` (the research tools, README "Research")."""
    from .research.cli_args import add_backtest_args, add_import_args, add_sweep_args

    imp = sub.add_parser("import-bybit", help="convert Bybit's archives into a recording")
    add_import_args(imp)
    imp.set_defaults(handler=_cmd_import_bybit)

    backtest = sub.add_parser("backtest", help="recordings through the engine + matching engine")
    add_backtest_args(backtest)
    backtest.set_defaults(handler=_cmd_backtest)

    sweep = sub.add_parser("sweep", help="a grid of backtests over processes or a Dask cluster")
    add_sweep_args(sweep)
    sweep.set_defaults(handler=_cmd_sweep)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scalper`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (``scalper report | head``): not a failure of ours; stdout
        # goes to /dev/null so the interpreter's final flush does not complain again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("scalper."):
            sys.stderr.write(f"scalper {args.command}: not built yet ({exc.name} is missing)\n")
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
