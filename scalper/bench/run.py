"""One whole bench run: every row in turn, the figures as one JSON-able object.

The in-process rows first, then the network rows on one frame server, then the order
path on the simulator, then memory; the machine's load average before and after, since
other work on a shared machine moves every absolute figure.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .floor import floor_client
from .frames import make_frames
from .loopback import ceiling_client, frame_server, our_client, pybit_client
from .orderpath import order_path
from .pipeline import bench_memory, bench_pipelines, naive, ours, pct

__all__ = ["BenchPlan", "run_bench"]


@attrs.frozen(kw_only=True)
class BenchPlan:
    """How much of everything one bench run does."""

    pipeline_frames: int = 200_000
    #: passes of each pipeline, taking turns; the best counts
    pipeline_rounds: int = 3
    loopback_frames: int = 100_000
    loopback_timeout_s: float = 30.0
    rates: tuple[float, ...] = (2_000.0, 200.0)
    rate_seconds: float = 10.0
    order_rounds: int = 40
    poll_s: float = 0.5
    memory_small: int = 100_000
    memory_large: int = 1_000_000

    @classmethod
    def quick(cls) -> BenchPlan:
        """Every row on small counts: proves the bench runs, measures nothing."""
        return cls(
            pipeline_frames=3_000,
            pipeline_rounds=1,
            loopback_frames=2_000,
            loopback_timeout_s=15.0,
            rate_seconds=0.5,
            order_rounds=3,
            poll_s=0.05,
            memory_small=2_000,
            memory_large=10_000,
        )


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        load = os.getloadavg()
        return f"load average: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def run_bench(plan: BenchPlan, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every row; the figures as one JSON-able object."""
    result: dict[str, Any] = {
        "machine": {
            "uptime_before": _uptime(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "plan": attrs.asdict(plan),
    }
    started = time.perf_counter()
    frames = make_frames(plan.pipeline_frames)
    progress("pipeline")
    paths = {"ours": ours, "naive": naive}
    bench_pipelines(frames[:2000], paths, 1)  # warm both paths: no first-call costs measured
    measured = bench_pipelines(frames, paths, plan.pipeline_rounds)
    o, b = measured["ours"], measured["naive"]
    result["pipeline"] = {
        "frames": len(frames),
        "rounds": plan.pipeline_rounds,
        "ours": o,
        "naive": b,
        "ratio": o["msgs_per_s"] / b["msgs_per_s"],
    }

    server_frames = max(plan.loopback_frames, int(max(plan.rates) * plan.rate_seconds) + 10)
    with frame_server(server_frames) as port:
        n = plan.loopback_frames
        url = f"ws://127.0.0.1:{port}/flood/{n}"
        expect, timeout = n + 1, plan.loopback_timeout_s
        progress("loopback: ours")
        r_ours = trio.run(our_client, url, expect, timeout, False)
        progress("loopback: pybit")
        r_pybit = pybit_client(url, expect, timeout, False)
        progress("loopback: trio-websocket receive-only")
        r_ceiling = trio.run(ceiling_client, url, expect, timeout)
        progress("loopback: wsfast receive-only")
        r_own = trio.run(ceiling_client, url, expect, timeout, "wsfast")
        result["loopback"] = {
            "frames": expect,
            "ours": r_ours.throughput(),
            "pybit": r_pybit.throughput(),
            "receive_only": r_ceiling.throughput(),
            "ratio_vs_pybit": _ratio(r_ours.rate, r_pybit.rate),
            "share_of_ceiling": _ratio(r_ours.rate, r_ceiling.rate),
            # ours no longer rides trio-websocket: its own transport's ceiling too
            "receive_only_wsfast": r_own.throughput(),
            "share_of_wsfast_ceiling": _ratio(r_ours.rate, r_own.rate),
        }
        result["latency"] = {}
        for rate in plan.rates:
            count = int(rate * plan.rate_seconds)
            url = f"ws://127.0.0.1:{port}/rate/{rate:g}/{plan.rate_seconds:g}"
            wait = plan.rate_seconds + 5.0
            progress(f"latency at {rate:g} msgs/s: ours")
            lo = trio.run(our_client, url, count + 1, wait, True)
            progress(f"latency at {rate:g} msgs/s: pybit")
            lp = pybit_client(url, count + 1, wait, True)
            # the floor: the bot's own transport receiving alone, nothing decided (at a
            # low rate each frame is its own wake-up, and the wake-up is most of the cost)
            progress(f"latency at {rate:g} msgs/s: wsfast receive-only")
            floor = trio.run(ceiling_client, url, count + 1, wait, "wsfast")
            # and under it the wake-up alone: the stream's bytes read and dropped by a
            # plain poll loop, then by one trio task (what the scheduler adds)
            progress(f"latency at {rate:g} msgs/s: wake-up floor")
            loops = {loop: floor_client(url, plan.rate_seconds, loop) for loop in ("plain", "trio")}
            result["latency"][f"{rate:g}"] = {
                "rate": rate,
                "seconds": plan.rate_seconds,
                "ours": lo.latency(),
                "pybit": lp.latency(),
                "receive_only_wsfast": {"cpu_pct": floor.cpu_pct, "frames": floor.frames},
                "wakeup_floor": {
                    loop: {"cpu_pct": r.cpu_pct, "reads": r.frames} for loop, r in loops.items()
                },
            }

    progress("order path")
    push, polled = trio.run(order_path, plan.order_rounds, plan.poll_s)
    result["order_path"] = {
        "rounds": plan.order_rounds,
        "poll_interval_ms": plan.poll_s * 1e3,
        "push": {"p50_ms": pct(push, 50), "p99_ms": pct(push, 99)},
        "rest_poll": {"p50_ms": pct(polled, 50), "p99_ms": pct(polled, 99)},
    }
    progress("memory")
    mem = bench_memory(frames, plan.memory_small, plan.memory_large)
    mem["ratio"] = _ratio(mem["rss_large_mib"], mem["rss_small_mib"])
    mem["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["memory"] = mem
    result["machine"]["uptime_after"] = _uptime()
    result["seconds"] = time.perf_counter() - started
    return result


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
