"""``scalper bench``: the hot path measured against a naive baseline, in one process.

Absolute timings on a shared 2-core machine mean little; ratios between two
implementations run back to back in the same process mean a lot. So every figure is
printed beside its baseline:

* **pipeline**: wire frame -> parse -> book -> engine decision. Ours: orjson, integer
  tick book with incremental best levels, floats on the hot path. Baseline: ``json``,
  a Decimal book sorted in full on every update (what a straightforward port does).
* **hop**: market-data task -> strategy task in trio. Ours: ``send_nowait`` on a
  bounded channel (DESIGN section 4). Baseline: the seed's original pattern, a new
  task spawned per message that awaits the send.
* **CPU share** at a fixed message rate: process CPU time / wall time for each.
* **tick-to-decision** latency p50/p99 for each.
* **memory**: peak allocation (tracemalloc) while each pipeline builds its state.

The message stream is synthetic but shaped like Bybit's ``orderbook.50`` deltas and
``publicTrade`` frames (1-3 levels changed per delta, a trade frame every 5th).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal

import orjson
import trio
import trio.lowlevel

from .bybit.parse import BookMessage, ParseStats, TradesMessage, parse_message
from .core.book import OrderBook
from .core.model import (
    BookTop,
    BookUpdate,
    Instrument,
    OpenOrders,
    PositionSnapshot,
    Side,
    SymbolSelected,
    Trade,
    TradeTicks,
)
from .core.strategy import Engine, EngineConfig

__all__ = ["main_bench", "make_frames"]

SYMBOL = "SOLUSDT"
TICK = Decimal("0.01")
_MID_TICKS = 15_000  # 150.00


def make_frames(n: int, seed: int = 7) -> list[bytes]:
    """A snapshot then ``n`` frames: book deltas, and a trade frame every 5th."""
    rng = random.Random(seed)
    frames = []
    bids = {_MID_TICKS - i: rng.uniform(1, 500) for i in range(1, 51)}
    asks = {_MID_TICKS + i: rng.uniform(1, 500) for i in range(1, 51)}

    def px(ticks: int) -> str:
        return f"{ticks / 100:.2f}"

    def book_frame(kind: str, b: dict[int, float], a: dict[int, float], u: int) -> bytes:
        data = {
            "s": SYMBOL,
            "b": [[px(p), f"{s:.1f}"] for p, s in sorted(b.items(), reverse=True)],
            "a": [[px(p), f"{s:.1f}"] for p, s in sorted(a.items())],
            "u": u,
            "seq": 1000 + u,
        }
        msg = {
            "topic": f"orderbook.50.{SYMBOL}",
            "type": kind,
            "ts": 1_700_000_000_000 + u,
            "data": data,
            "cts": 1_700_000_000_000 + u,
        }
        return orjson.dumps(msg)

    frames.append(book_frame("snapshot", bids, asks, 1))
    price = _MID_TICKS
    for u in range(2, n + 2):
        if u % 5 == 0:
            price += rng.choice((-3, -1, 0, 1, 3))
            trades = [
                {
                    "T": 1_700_000_000_000 + u,
                    "s": SYMBOL,
                    "S": rng.choice(("Buy", "Sell")),
                    "v": f"{rng.uniform(0.1, 20):.1f}",
                    "p": px(price),
                    "L": "PlusTick",
                    "i": f"t{u}-{k}",
                    "BT": False,
                    "seq": 1000 + u,
                }
                for k in range(rng.randint(1, 3))
            ]
            frames.append(
                orjson.dumps(
                    {
                        "topic": f"publicTrade.{SYMBOL}",
                        "type": "snapshot",
                        "ts": 1_700_000_000_000 + u,
                        "data": trades,
                    }
                )
            )
            continue
        b: dict[int, float] = {}
        a: dict[int, float] = {}
        for _ in range(rng.randint(1, 3)):
            side, sign = (b, -1) if rng.random() < 0.5 else (a, 1)
            level = _MID_TICKS + sign * rng.randint(1, 50)
            side[level] = 0.0 if rng.random() < 0.2 else rng.uniform(1, 500)
        frames.append(book_frame("delta", b, a, u))
    return frames


def _engine() -> Engine:
    engine = Engine(EngineConfig(session_tag="bench", stale_ms=10**12))
    instrument = Instrument(
        symbol=SYMBOL,
        tick_size=TICK,
        qty_step=Decimal("0.1"),
        min_qty=Decimal("0.1"),
        max_qty=Decimal(10000),
        max_mkt_qty=Decimal(5000),
        min_notional=Decimal(5),
    )
    engine.handle(SymbolSelected(symbol=SYMBOL, instrument=instrument), 0)
    engine.handle(PositionSnapshot(symbol=SYMBOL, side=None, size=Decimal(0)), 0)
    engine.handle(OpenOrders(symbol=SYMBOL, order_link_ids=()), 0)
    return engine


Step = Callable[[bytes], object]


def ours() -> Step:
    """Our hot path: orjson parse, integer-tick book, engine decision."""
    stats = ParseStats(name="bench")
    book = OrderBook(SYMBOL, TICK)
    engine = _engine()
    now = 1_700_000_000_000

    def step(raw: bytes) -> object:
        msg = parse_message(raw, stats)
        if isinstance(msg, BookMessage):
            book.apply(msg.kind, msg.bids, msg.asks, msg.update_id, msg.ts_ms)
            top = book.top()
            if top is not None:
                return engine.handle(BookUpdate(top=top), now + msg.update_id)
        elif isinstance(msg, TradesMessage):
            return engine.handle(TradeTicks(symbol=SYMBOL, trades=msg.trades), now)
        return None

    return step


def naive() -> Step:
    """Baseline: json, a Decimal book, a full sort per update, the same engine."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    engine = _engine()
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


def bench_memory(frames: list[bytes], make: Callable[[], Step]) -> float:
    """Peak memory (KiB) allocated while one pipeline builds its state over ``frames``."""
    tracemalloc.start()
    try:
        step = make()
        for raw in frames:
            step(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def bench_pipeline(frames: list[bytes], make: Callable[[], Step]) -> tuple[float, float, float]:
    """(msgs/s, p50 s, p99 s) of one pipeline over ``frames``."""
    step = make()
    lat: list[float] = []
    clock = time.perf_counter
    start = clock()
    for raw in frames:
        t0 = clock()
        step(raw)
        lat.append(clock() - t0)
    elapsed = clock() - start
    return len(frames) / elapsed, _pct(lat, 50), _pct(lat, 99)


async def _hop(
    frames: list[bytes], spawn: bool, rate: float | None
) -> tuple[float, float, float, float]:
    """Push frames through a market-data -> strategy hop; (msgs/s, p50, p99, cpu share)."""
    step = ours()
    send, receive = trio.open_memory_channel[tuple[float, bytes]](1024)
    lat: list[float] = []
    clock = time.perf_counter

    async def consumer() -> None:
        async for stamp, raw in receive:
            step(raw)
            lat.append(clock() - stamp)

    async def spawned_send(item: tuple[float, bytes]) -> None:
        await send.send(item)

    cpu0, wall0 = time.process_time(), clock()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        async with trio.open_nursery() as producers:
            interval = 1.0 / rate if rate else 0.0
            next_at = clock()
            for i, raw in enumerate(frames):
                if spawn:
                    producers.start_soon(spawned_send, (clock(), raw))
                else:
                    try:
                        send.send_nowait((clock(), raw))
                    except trio.WouldBlock:
                        await send.send((clock(), raw))  # the bench counts, it never drops
                if rate:
                    next_at += interval
                    delay = next_at - clock()
                    if delay > 0:
                        await trio.sleep(delay)
                elif i % 64 == 0:
                    await (
                        trio.lowlevel.checkpoint()
                    )  # let the consumer run, as a socket reader would
        await send.aclose()
    wall = clock() - wall0
    cpu = time.process_time() - cpu0
    return len(frames) / wall, _pct(lat, 50), _pct(lat, 99), cpu / wall


def _row(name: str, ours_v: float, base_v: float, unit: str, better_high: bool) -> str:
    ratio = ours_v / base_v if better_high else base_v / ours_v
    return (
        f"  {name:<34} ours {ours_v:>12,.1f} {unit:<6} "
        f"baseline {base_v:>12,.1f} {unit:<6} x{ratio:5.2f}"
    )


def main_bench(args: argparse.Namespace) -> int:
    """Entry point of ``scalper bench``: prints figures and ratios (higher x = ours better)."""
    n = int(args.messages)
    frames = make_frames(n)
    out = sys.stdout
    out.write(f"scalper bench: {len(frames)} frames (book deltas + trades), one process\n")
    # warm both paths once so neither pays first-call costs in the measured run
    bench_pipeline(frames[:2000], ours)
    bench_pipeline(frames[:2000], naive)
    o_rate, o50, o99 = bench_pipeline(frames, ours)
    b_rate, b50, b99 = bench_pipeline(frames, naive)
    out.write("pipeline: parse -> book -> decision (naive = json + Decimal book + full sort)\n")
    out.write(_row("throughput", o_rate, b_rate, "msg/s", True) + "\n")
    out.write(_row("tick-to-decision p50", o50 * 1e6, b50 * 1e6, "us", False) + "\n")
    out.write(_row("tick-to-decision p99", o99 * 1e6, b99 * 1e6, "us", False) + "\n")
    mem_frames = frames[:10_000]
    o_mem, b_mem = bench_memory(mem_frames, ours), bench_memory(mem_frames, naive)
    out.write(_row("peak memory (10k frames)", o_mem, b_mem, "KiB", False) + "\n")

    hop_frames = frames[: min(len(frames), 20_000)]
    t_rate, t50, t99, _ = trio.run(_hop, hop_frames, False, None)
    s_rate, s50, s99, _ = trio.run(_hop, hop_frames, True, None)
    out.write("hop: market-data task -> strategy task (baseline = spawn a task per message)\n")
    out.write(_row("throughput", t_rate, s_rate, "msg/s", True) + "\n")
    out.write(_row("queueing delay p50 (saturated)", t50 * 1e6, s50 * 1e6, "us", False) + "\n")
    out.write(_row("queueing delay p99 (saturated)", t99 * 1e6, s99 * 1e6, "us", False) + "\n")

    rate = float(args.rate)
    fixed = frames[: int(rate * args.seconds)]
    _, f50, f99, f_cpu = trio.run(_hop, fixed, False, rate)
    _, g50, g99, g_cpu = trio.run(_hop, fixed, True, rate)
    out.write(
        f"fixed rate {rate:,.0f} msg/s for {args.seconds:g} s (baseline = spawn per message)\n"
    )
    out.write(_row("CPU share", f_cpu * 100, g_cpu * 100, "%", False) + "\n")
    out.write(_row("socket-to-decision p50", f50 * 1e6, g50 * 1e6, "us", False) + "\n")
    out.write(_row("socket-to-decision p99", f99 * 1e6, g99 * 1e6, "us", False) + "\n")
    out.write("(x > 1: ours is better by that factor; figures vary run to run, ratios less)\n")
    return 0
