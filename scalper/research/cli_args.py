"""The flags of ``import-bybit``, ``backtest`` and ``sweep``, kept apart from their work.

Building the parser must stay cheap (``scalper --help`` should not import the simulator),
so the flags live here and each command's module is imported only when it runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_backtest_args", "add_import_args", "add_sweep_args"]


def _repeatable(
    parser: argparse.ArgumentParser, flag: str, metavar: str, help: str, *, required: bool = False
) -> None:
    """A flag that may be given more than once: its values collect in a list."""
    parser.add_argument(
        flag, action="append", default=[], required=required, metavar=metavar, help=help
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="recordings (.jsonl or .gz)")
    _repeatable(
        parser,
        "--set",
        "SECTION.KEY=VALUE",
        "a bot setting, or backtest.maker_fee / backtest.taker_fee / backtest.latency_ms",
    )
    parser.add_argument("--latency-ms", type=int, metavar="N", help="order and cancel latency")
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="text, or one JSON object"
    )
    parser.add_argument("--config", metavar="FILE", help="local settings file (TOML)")


def add_backtest_args(parser: argparse.ArgumentParser) -> None:
    """Flags of ``scalper backtest``."""
    _common(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="write the equity curve here")
    parser.add_argument("--verbose", action="store_true", help="print transitions and fills")


def add_sweep_args(parser: argparse.ArgumentParser) -> None:
    """Flags of ``scalper sweep``."""
    _common(parser)
    _repeatable(
        parser,
        "--grid",
        "SECTION.KEY=V1,V2,...",
        "values to try for one key (the sweep runs the cartesian product)",
        required=True,
    )
    parser.add_argument("--workers", type=int, metavar="N", help="local processes (default: cores)")
    parser.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (tcp://host:8786)")


def add_import_args(parser: argparse.ArgumentParser) -> None:
    """Flags of ``scalper import-bybit``."""
    _repeatable(
        parser,
        "--book",
        "FILE.zip",
        "an order-book archive (YYYY-MM-DD_SYMBOL_ob500.data.zip); repeat for more days",
        required=True,
    )
    _repeatable(
        parser,
        "--trades",
        "FILE.csv.gz",
        "a trade dump (SYMBOLYYYY-MM-DD.csv.gz); repeat for more days",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help=".jsonl, or .gz to compress")
    parser.add_argument("--tick-size", metavar="TICK", help="the symbol's tickSize")
    parser.add_argument("--qty-step", metavar="STEP", help="the symbol's qtyStep")
    parser.add_argument(
        "--rest-url",
        metavar="URL",
        help="read the rules from this exchange's instruments-info (e.g. a scalper exchange)",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "on", "off"],
        default="auto",
        help="progress bar (auto: on a terminal)",
    )
