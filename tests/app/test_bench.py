"""``scalper bench`` runs end to end (quick mode) and reports every row and every key.

No timing is asserted (the machine is shared). What is checked: both pipelines make the
same decisions on the same frames (so the ratio compares like with like), the quick run
of the real command prints every row beside its baseline with a ratio, and ``--json``
carries every figure the text shows.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable

from scalper.bench import make_frames, naive, ours, render

#: every figure of the report, as a path into the JSON object
KEYS = [
    ("pipeline", "ours", "msgs_per_s"),
    ("pipeline", "ours", "p50_us"),
    ("pipeline", "ours", "p99_us"),
    ("pipeline", "naive", "msgs_per_s"),
    ("pipeline", "naive", "p50_us"),
    ("pipeline", "naive", "p99_us"),
    ("pipeline", "ratio"),
    ("loopback", "ours", "msgs_per_s"),
    ("loopback", "ours", "decisions"),
    ("loopback", "ours", "superseded"),
    ("loopback", "ours", "lag_dropped"),
    ("loopback", "ours", "cpu_pct"),
    ("loopback", "pybit", "msgs_per_s"),
    ("loopback", "pybit", "cpu_pct"),
    ("loopback", "receive_only", "msgs_per_s"),
    ("loopback", "ratio_vs_pybit"),
    ("loopback", "share_of_ceiling"),
    ("loopback", "receive_only_wsfast", "msgs_per_s"),
    ("loopback", "share_of_wsfast_ceiling"),
    *[
        ("latency", rate, who, key)
        for rate in ("2000", "200")
        for who in ("ours", "pybit")
        for key in ("p50_us", "p99_us", "p999_us", "cpu_pct", "decided")
    ],
    *[("latency", rate, "receive_only_wsfast", "cpu_pct") for rate in ("2000", "200")],
    *[
        ("latency", rate, "wakeup_floor", loop, key)
        for rate in ("2000", "200")
        for loop in ("plain", "trio")
        for key in ("cpu_pct", "reads")
    ],
    ("order_path", "push", "p50_ms"),
    ("order_path", "push", "p99_ms"),
    ("order_path", "rest_poll", "p50_ms"),
    ("order_path", "rest_poll", "p99_ms"),
    ("memory", "rss_small_mib"),
    ("memory", "rss_large_mib"),
    ("memory", "ratio"),
    ("machine", "uptime_before"),
    ("machine", "uptime_after"),
]


def test_both_pipelines_make_the_same_decisions_on_the_same_frames() -> None:
    frames = make_frames(3000)
    fast, slow = ours(), naive()
    decisions_fast = [fast(raw) for raw in frames]
    decisions_slow = [slow(raw) for raw in frames]
    assert decisions_fast[1:] == decisions_slow[1:]  # frame 0 is the snapshot
    assert any(decisions_fast)  # the engine did decide something on this stream


def test_quick_bench_runs_and_reports_every_row_and_key() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scalper.cli", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    for path in KEYS:
        value = result
        for key in path:
            assert key in value, f"missing {'.'.join(path)}"
            value = value[key]
        if not isinstance(value, str):
            assert isinstance(value, int | float), path
    # every client really received the stream (not a timeout with nothing measured)
    loop = result["loopback"]
    for who in ("ours", "pybit", "receive_only", "receive_only_wsfast"):
        assert loop[who]["frames"] == loop["frames"], who
        assert loop[who]["msgs_per_s"] > 0
    for rate in ("2000", "200"):
        assert result["latency"][rate]["ours"]["decided"] > 0
        assert result["latency"][rate]["pybit"]["decided"] > 0
        assert not math.isnan(result["latency"][rate]["ours"]["p99_us"])
        assert result["latency"][rate]["receive_only_wsfast"]["frames"] > 0  # the floor ran
        for loop in ("plain", "trio"):  # and so did the wake-up floor's loops, on the stream
            assert result["latency"][rate]["wakeup_floor"][loop]["reads"] > 0, (rate, loop)
    assert result["order_path"]["push"]["p99_ms"] > 0

    text = render(result)
    rows = [line for line in text.splitlines() if line.startswith("  ") and " ours " in line]
    assert len(rows) == 3 + 3 + 2 * 4 + 2 + 1
    assert all(re.search(r"ours .* baseline .* x\s*\d+\.\d\d$", row) for row in rows)
    for label in ("pipeline:", "loopback:", "latency at 2,000", "latency at 200", "order path:"):
        assert label in text
    assert text.count("wsfast receiving alone at this rate") == 2
    assert text.count("the wake-up alone, the stream read and dropped") == 2


def test_the_pipelines_take_turns_and_the_best_pass_counts() -> None:
    from scalper.bench.pipeline import bench_pipelines

    made: list[str] = []

    def path(name: str) -> Callable[[], Callable[[bytes], object]]:
        def make() -> Callable[[bytes], object]:
            made.append(name)
            return lambda raw: None

        return make

    frames = [b"x"] * 50
    out = bench_pipelines(frames, {"ours": path("ours"), "naive": path("naive")}, 3)
    # three passes each, alternating, then one timed pass each for the percentiles
    assert made == ["ours", "naive"] * 3 + ["ours", "naive"]
    for figures in out.values():
        assert len(figures["passes"]) == 3
        assert figures["msgs_per_s"] == max(figures["passes"])
        assert {"p50_us", "p99_us"} <= set(figures)
