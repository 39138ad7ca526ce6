"""Latency statistics: a sample recorded in the hot path (``record``: kept as is) counts
in exactly as one added at once would, in its order, at the next read or fold; ``add``
folds on its own past a bound, so memory stays bounded without anyone reading."""

from __future__ import annotations

import bisect
import random

from scalper.app.metrics import _FOLD_AT, _RESERVOIR, BUCKETS_S, LatencyStats


def _samples(n: int) -> list[float]:
    rng = random.Random(5)
    return [rng.choice((1e-5, 1e-3, 0.3, 20.0)) * rng.random() for _ in range(n)]


def test_recorded_samples_count_in_as_added_ones_in_their_order() -> None:
    samples = _samples(3 * _RESERVOIR + 17)
    added, recorded = LatencyStats(), LatencyStats()
    rng = random.Random(9)
    for i, seconds in enumerate(samples):
        added.add(seconds)
        recorded.record(seconds)
        if rng.random() < 0.01:
            recorded.fold()
        if rng.random() < 0.001:  # a read counts in what was kept so far
            assert recorded.count == i + 1
    assert recorded.unfolded > 0
    # the reference, computed here: every sample in order, the latest ones kept
    total = 0.0
    buckets = [0] * (len(BUCKETS_S) + 1)
    for seconds in samples:
        total += seconds
        buckets[bisect.bisect_left(BUCKETS_S, seconds)] += 1
    latest = sorted(samples[-_RESERVOIR:])
    for stats in (added, recorded):
        assert stats.count == len(samples)
        assert stats.total == total  # the same float sum: the same order
        assert stats.bucket_counts == buckets
        assert stats.cumulative_buckets()[-1] == ("+Inf", len(samples))
        for pct in range(101):
            index = min(len(latest) - 1, max(0, round(pct / 100.0 * (len(latest) - 1))))
            assert stats.percentile(pct) == latest[index]
    assert recorded.unfolded == 0


def test_add_counts_in_past_its_bound_without_a_read() -> None:
    stats = LatencyStats()
    for seconds in _samples(10 * _FOLD_AT + 3):
        stats.add(seconds)
        assert stats.unfolded < _FOLD_AT
    assert LatencyStats().percentile(50) is None
