"""The chaos soak (``tests/soak/driver.py``): the whole bot as a process against the
simulator as a process, every fault kind injected on a seeded schedule, the invariants
checked every half second while it runs. A short run is part of ``make test``; the
long one (``SOAK_SECONDS``, default 600) runs in ``make soak``.

Robust under load: no assertion on speed; every wait in the driver is bounded and
generous (a position may lag the exchange for 20 s, a stop 5 s after a position shows).
"""

from __future__ import annotations

import os
import sys

import pytest

from .driver import PROCESS_KINDS, SIM_KINDS, run_soak


def _check(report_text: str, violations: list[str]) -> None:
    sys.stdout.write("\n" + report_text + "\n")
    assert violations == [], report_text


def test_soak_60_s_with_faults_and_a_kill_9() -> None:
    report = run_soak(60, seed=int(os.environ.get("SOAK_SEED", 7)), kinds=(*SIM_KINDS, "kill9"))
    _check(report.table(), report.violations)
    assert report.restarts >= 1  # the kill -9 came first in the schedule
    assert sum(report.faults.values()) >= 5
    assert report.checks["position equals exchange"] > 0
    assert report.orders > 0  # it traded through the faults


@pytest.mark.slow
def test_soak_long_every_fault_kind() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", 600))
    report = run_soak(seconds, seed=int(os.environ.get("SOAK_SEED", 1)))
    _check(report.table(), report.violations)
    for kind in SIM_KINDS + PROCESS_KINDS:
        assert report.faults[kind] > 0, f"{kind} never injected"
    assert report.halts > 0 and report.checks["halt pnl equals exchange"] >= report.halts
    assert report.checks["rss"] == 1
