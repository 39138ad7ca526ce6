"""The in-process rows: frames -> decode -> book -> engine, ours and the naive port's.

No network, no event loop: what one message costs on each path, on the same frames and
the same engine, so the ratio is the price of decoding and keeping the book. The memory
row runs our path over a million messages too.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..bybit.marketdata import MarketData
from ..bybit.parse import ParseStats
from ..core.model import BookTop, BookUpdate, Side, Trade, TradeTicks
from .frames import SYMBOL, TICK, bench_engine

__all__ = ["Step", "bench_memory", "bench_pipelines", "naive", "ours", "pct"]

Step = Callable[[bytes], object]


def ours() -> Step:
    """Our hot path: the live market-data protocol (typed decoding, integer-tick book), engine."""
    market = MarketData(ParseStats(name="bench"))
    market.follow(SYMBOL, TICK)
    frame, book = market.frame, market.book
    assert book is not None
    handle = bench_engine().handle
    now = 1_700_000_000_000

    def step(raw: bytes) -> object:
        event = frame(raw)
        if type(event) is BookUpdate:
            return handle(event, now + (book.update_id or 0))
        if type(event) is TradeTicks:
            return handle(event, now)
        return None

    return step


def naive() -> Step:
    """Baseline: json, a Decimal book, a full sort per update, the same engine."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    engine = bench_engine()
    now = 1_700_000_000_000

    def step(raw: bytes) -> object:
        msg = json.loads(raw)
        data = msg["data"]
        if msg["topic"].startswith("publicTrade"):
            trades = tuple(
                Trade(
                    symbol=t["s"],
                    price=float(Decimal(t["p"])),
                    qty=float(Decimal(t["v"])),
                    side=Side(t["S"]),
                    ts_ms=t["T"],
                )
                for t in data
            )
            return engine.handle(TradeTicks(symbol=SYMBOL, trades=trades), now)
        if msg["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for levels, book in ((data["b"], bids), (data["a"], asks)):
            for p, s in levels:
                if Decimal(s) == 0:
                    book.pop(Decimal(p), None)
                else:
                    book[Decimal(p)] = Decimal(s)
        best_bid = sorted(bids.items(), reverse=True)[0]
        best_ask = sorted(asks.items())[0]
        top = BookTop(
            symbol=SYMBOL,
            bid=float(best_bid[0]),
            bid_size=float(best_bid[1]),
            ask=float(best_ask[0]),
            ask_size=float(best_ask[1]),
            ts_ms=msg["ts"],
        )
        return engine.handle(BookUpdate(top=top), now + data["u"])

    return step


def pct(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) of ``samples``; NaN when there are none."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def _pass_rate(frames: list[bytes], make: Callable[[], Step]) -> float:
    """msgs/s of one plain pass of a fresh pipeline over ``frames``."""
    step = make()
    clock = time.perf_counter
    start = clock()
    for raw in frames:
        step(raw)
    return len(frames) / (clock() - start)


def _latencies(frames: list[bytes], make: Callable[[], Step]) -> dict[str, float]:
    """p50/p99 per message of a fresh pipeline: each step timed on its own."""
    step = make()
    clock = time.perf_counter
    lat: list[float] = []
    for raw in frames:
        t0 = clock()
        step(raw)
        lat.append(clock() - t0)
    return {"p50_us": pct(lat, 50) * 1e6, "p99_us": pct(lat, 99) * 1e6}


def bench_pipelines(
    frames: list[bytes], makes: Mapping[str, Callable[[], Step]], rounds: int
) -> dict[str, dict[str, Any]]:
    """Each pipeline's msgs/s, the best of ``rounds`` passes, and p50/p99 per message.

    The pipelines take turns, pass by pass: on a shared machine a burst of load then
    slows one pass of one of them, not one pipeline's whole figure (the best pass is the
    one least disturbed, as ``timeit`` reports). Every pass is listed too.
    """
    rates: dict[str, list[float]] = {name: [] for name in makes}
    for _ in range(rounds):
        for name, make in makes.items():
            rates[name].append(_pass_rate(frames, make))
    return {
        name: {"msgs_per_s": max(rates[name]), "passes": rates[name], **_latencies(frames, make)}
        for name, make in makes.items()
    }


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_memory(frames: list[bytes], small: int, large: int) -> dict[str, float]:
    """RSS after ``small`` and after ``large`` messages through our pipeline (the frames
    cycle: each pass starts with the snapshot, ``u == 1``, which resets the book)."""
    step = ours()
    n = len(frames)
    rss_small = 0.0
    for i in range(large):
        step(frames[i % n])
        if i + 1 == small:
            gc.collect()
            rss_small = _rss_mib()
    gc.collect()
    rss_large = _rss_mib()
    return {
        "messages_small": small,
        "messages_large": large,
        "rss_small_mib": rss_small,
        "rss_large_mib": rss_large,
    }
