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


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that override settings (the highest-precedence source)."""
    parser.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    parser.add_argument("--mode", choices=["sim", "demo", "testnet", "live"])
    parser.add_argument("--rest-url", metavar="URL")
    parser.add_argument("--ws-public-url", metavar="URL")
    parser.add_argument("--ws-private-url", metavar="URL")
    parser.add_argument("--api-key", metavar="KEY")
    parser.add_argument("--api-secret", metavar="SECRET")
    parser.add_argument("--journal", metavar="PATH", help="journal file (SQLite)")
    parser.add_argument("--log-level", metavar="LEVEL")
    parser.add_argument("--log-format", choices=["human", "json"])


def _cmd_check_config(args: argparse.Namespace) -> int:
    from .config import render_settings

    settings = _load_settings(args)
    sys.stdout.write(render_settings(settings))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    from .app.main import main_run

    return main_run(settings, live=args.live, duration_s=args.duration)


def _cmd_exchange(args: argparse.Namespace) -> int:
    from .sim.cli import main_exchange

    return main_exchange(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main_bench

    return main_bench(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import main_report

    return main_report(args)


def _cmd_record(args: argparse.Namespace) -> int:
    from .replay.cli import main_record

    return main_record(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .replay.cli import main_replay

    return main_replay(args)


def _load_settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Load settings from all four sources; exit 2 with one line on a bad value."""
    from .config import SettingsError, load_settings, overrides_from_args

    try:
        return load_settings(config_path=args.config, overrides=overrides_from_args(args))
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and shell completion)."""
    parser = argparse.ArgumentParser(
        prog="scalper", description="Bybit v5 scalping bot for linear USDT perpetuals."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (no keys: against the built-in exchange)")
    _add_settings_flags(run)
    run.add_argument("--live", action="store_true", help="required to trade on mainnet")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop gracefully after")
    run.set_defaults(handler=_cmd_run)

    check = sub.add_parser("check-config", help="print effective settings (secrets masked)")
    _add_settings_flags(check)
    check.set_defaults(handler=_cmd_check_config)

    exchange = sub.add_parser("exchange", help="serve the simulated Bybit exchange")
    exchange.add_argument("--host", default="127.0.0.1")
    exchange.add_argument("--port", type=int, default=8765)
    exchange.add_argument("--seed", type=int, default=1)
    exchange.add_argument("--symbols", nargs="*", metavar="SYMBOL")
    exchange.add_argument("--rate", type=float, metavar="MSGS_PER_S", help="public msgs/s")
    exchange.add_argument("--api-key", default="sim-key")
    exchange.add_argument("--api-secret", default="sim-secret")
    exchange.set_defaults(handler=_cmd_exchange)

    bench = sub.add_parser("bench", help="hot path vs naive, pybit and receive-only, as ratios")
    bench.add_argument("--json", action="store_true", help="the same figures as one JSON object")
    bench.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    bench.set_defaults(handler=_cmd_bench)

    report = sub.add_parser("report", help="trades, PnL and equity curve from the journal")
    report.add_argument("--journal", metavar="PATH")
    report.add_argument("--png", metavar="PATH", help="write the equity curve here")
    report.set_defaults(handler=_cmd_report)

    record = sub.add_parser("record", help="capture a symbol's public stream to a file")
    record.add_argument("--symbol", required=True, metavar="SYMBOL")
    record.add_argument("--seconds", type=float, metavar="N", help="stop after N s (else Ctrl+C)")
    record.add_argument("--out", metavar="FILE", help="default: SYMBOL-<UTC time>.jsonl")
    record.add_argument("--tick-size", metavar="TICK", help="if instruments-info is unreachable")
    record.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    record.add_argument("--mode", choices=["sim", "demo", "testnet", "live"])
    record.add_argument("--rest-url", metavar="URL")
    record.add_argument("--ws-public-url", metavar="URL")
    record.add_argument("--log-level", metavar="LEVEL")
    record.set_defaults(handler=_cmd_record)

    replay = sub.add_parser("replay", help="replay a recording through the bot, paper fills")
    replay.add_argument("file", metavar="FILE")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="X", help="X times real time")
    pace.add_argument("--as-fast-as-possible", action="store_true")
    replay.add_argument("--config", metavar="FILE", help="local settings file (TOML)")
    replay.add_argument("--verbose", action="store_true", help="also print the engine's logs")
    replay.add_argument("--log-level", metavar="LEVEL")
    replay.set_defaults(handler=_cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scalper`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("scalper."):
            sys.stderr.write(f"scalper {args.command}: not built yet ({exc.name} is missing)\n")
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
