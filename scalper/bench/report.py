"""The text report of ``scalper bench`` and its command entry point.

One line per figure, ours beside the baseline with the ratio (``x`` > 1: ours is better
by that factor, whether higher or lower is better for that figure); ``--json`` prints
the same figures as one object instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loguru import logger

from .run import BenchPlan, run_bench

__all__ = ["main_bench", "render"]

#: (label, key in each side's figures, unit, higher is better) of each latency row
_LATENCY_ROWS = (
    ("tick-to-decision p50", "p50_us", "us", False),
    ("tick-to-decision p99", "p99_us", "us", False),
    ("tick-to-decision p99.9", "p999_us", "us", False),
    ("CPU share", "cpu_pct", "%", False),
)
_PIPELINE_ROWS = (
    ("throughput", "msgs_per_s", "msg/s", True),
    ("per message p50", "p50_us", "us", False),
    ("per message p99", "p99_us", "us", False),
)
_ORDER_ROWS = (
    ("place -> fill noticed p50", "p50_ms", "ms", False),
    ("place -> fill noticed p99", "p99_ms", "ms", False),
)


def _row(name: str, ours_v: float, base_v: float, unit: str, better_high: bool) -> str:
    ratio = (ours_v / base_v if better_high else base_v / ours_v) if ours_v and base_v else 0.0
    return (
        f"  {name:<30} ours {ours_v:>12,.1f} {unit:<6} "
        f"baseline {base_v:>12,.1f} {unit:<6} x{ratio:5.2f}"
    )


def _rows(
    ours: dict[str, float], base: dict[str, float], spec: tuple[tuple[str, str, str, bool], ...]
) -> list[str]:
    return [_row(name, ours[key], base[key], unit, high) for name, key, unit, high in spec]


def render(result: dict[str, Any]) -> str:
    """The text report: one row per figure, ours beside the baseline, with the ratio."""
    p, lo, mem, op = result["pipeline"], result["loopback"], result["memory"], result["order_path"]
    ours, pybit, ceiling = lo["ours"], lo["pybit"], lo["receive_only"]
    lines = [
        "scalper bench: ours vs baseline, one run (x > 1: ours better by that factor)",
        f"machine: {result['machine']['cpus']} cpus, python {result['machine']['python']}; "
        f"before: {result['machine']['uptime_before']}",
        f"pipeline: {p['frames']:,} synthetic frames -> decode -> book -> engine, no network, "
        f"best of {p['rounds']} passes each, taking turns "
        "(baseline: json + Decimal book + full sort, same engine)",
        *_rows(p["ours"], p["naive"], _PIPELINE_ROWS),
        f"loopback: {lo['frames']:,} frames from a server process over 127.0.0.1 as fast as "
        "possible; ours = market-data task + strategy runner (received and decided)",
        _row("vs pybit WebSocket", ours["msgs_per_s"], pybit["msgs_per_s"], "msg/s", True),
        _row(
            "vs trio-websocket receive-only",
            ours["msgs_per_s"],
            ceiling["msgs_per_s"],
            "msg/s",
            True,
        ),
        _row("CPU share vs pybit", ours["cpu_pct"], pybit["cpu_pct"], "%", False),
        f"  (ours: {ours['decisions']:,} engine decisions, "
        f"{ours['superseded']:,} book updates superseded by a newer one first, "
        f"{ours['lag_dropped']:,} of them while lagging)",
        f"  (bybit.wsfast, the bot's own transport, receives alone "
        f"{lo['receive_only_wsfast']['msgs_per_s']:,.0f} msg/s; decided at "
        f"{lo['share_of_wsfast_ceiling']:.2f} of that)",
    ]
    for key, lat in result["latency"].items():
        lines.append(
            f"latency at {float(key):,.0f} msg/s for {lat['seconds']:g} s: frame sent -> "
            f"decided (baseline: pybit callback); ours {lat['ours']['decided']:,} decided"
        )
        lines += _rows(lat["ours"], lat["pybit"], _LATENCY_ROWS)
        floor = lat["receive_only_wsfast"]["cpu_pct"]
        share = lat["ours"]["cpu_pct"] / floor if floor else 0.0
        lines.append(
            f"  (bybit.wsfast receiving alone at this rate, nothing decided: CPU {floor:.2f} %; "
            f"receiving and deciding costs x{share:.2f} that)"
        )
        wake = lat["wakeup_floor"]
        lines.append(
            f"  (the wake-up alone, the stream read and dropped: a plain poll loop "
            f"{wake['plain']['cpu_pct']:.2f} %, one trio task {wake['trio']['cpu_pct']:.2f} %)"
        )
    lines.append(
        f"order path: {op['rounds']} Market IOC orders on the simulator (ours: private push; "
        f"baseline: REST polling every {op['poll_interval_ms']:g} ms)"
    )
    lines += _rows(op["push"], op["rest_poll"], _ORDER_ROWS)
    lines.append(
        f"memory: RSS after {mem['messages_large']:,} messages (ours) vs after "
        f"{mem['messages_small']:,} (baseline); flat = x1.00"
    )
    lines.append(_row("RSS", mem["rss_large_mib"], mem["rss_small_mib"], "MiB", False))
    lines.append(
        f"after: {result['machine']['uptime_after']}; bench took {result['seconds']:.0f} s"
    )
    return "\n".join(lines) + "\n"


def main_bench(args: argparse.Namespace) -> int:
    """Entry point of ``scalper bench``: the text report, or ``--json`` the same figures."""
    plan = BenchPlan.quick() if getattr(args, "quick", False) else BenchPlan()

    def progress(what: str) -> None:
        sys.stderr.write(f"bench: {what}...\n")

    # The bot's own log lines (connects, the engine's once-per-state notes) would only
    # interleave with the report; every figure they could tell is in it.
    logger.disable("scalper")
    try:
        result = run_bench(plan, progress)
    finally:
        logger.enable("scalper")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render(result))
    return 0
