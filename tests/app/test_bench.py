"""``scalper bench`` runs end to end and prints every figure beside its baseline.

No timing is asserted (the machine is shared); the check is that both pipelines
process the same frames and reach the same decisions, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import io
import re
from contextlib import redirect_stdout

from scalper.bench import main_bench, make_frames, naive, ours


def test_both_pipelines_make_the_same_decisions_on_the_same_frames() -> None:
    frames = make_frames(3000)
    fast, slow = ours(), naive()
    decisions_fast = [fast(raw) for raw in frames]
    decisions_slow = [slow(raw) for raw in frames]
    assert decisions_fast[1:] == decisions_slow[1:]  # frame 0 is the snapshot
    assert any(decisions_fast)  # the engine did decide something on this stream


def test_bench_prints_every_row_with_a_ratio() -> None:
    out = io.StringIO()
    args = argparse.Namespace(messages=2000, rate=500.0, seconds=0.2)
    with redirect_stdout(out):
        assert main_bench(args) == 0
    rows = [line for line in out.getvalue().splitlines() if line.startswith("  ")]
    assert len(rows) == 10
    assert all(re.search(r"ours .* baseline .* x\s*\d+\.\d\d$", row) for row in rows)
