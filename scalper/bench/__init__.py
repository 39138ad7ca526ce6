"""``scalper bench [--json] [--quick]``: our hot path beside its peers, in one run.

Absolute timings on a shared 2-core machine mean little; figures taken back to back in
one run, on the same frames, mean a lot. So every row prints ours beside a baseline and
the ratio (``x`` > 1: ours is better by that factor):

* **pipeline**: synthetic Bybit frames -> decode -> book -> engine decision, in
  process, no network. Ours: the live path's ``bybit.marketdata.MarketData``
  (``bybit.decode`` msgspec structs, the integer-tick ``OrderBook``). Baseline:
  ``json`` + a Decimal book sorted in full per update, the same engine (what a
  straightforward port does). msgs/s, p50/p99 per message.
* **loopback**: a frame server in another process (``scalper.bench.server``) pushes
  ``orderbook.50`` deltas and ``publicTrade`` frames as fast as the socket takes them,
  over 127.0.0.1, to (a) the real market-data path: ``app.market_data`` (WebSocket
  reader -> decode -> book -> ``MarketFeed``) and ``app.strategy.StrategyRunner``
  (the engine); (b) pybit's ``WebSocket`` client, with its own book handling and a
  callback that only counts; (c) a bare trio-websocket loop that only receives, opened
  by our ``ws.default_connect`` (64 KiB reads, a 256-message queue): the ceiling of the
  transport the bot used before ``bybit.wsfast``. msgs/s = frames received, applied
  and reflected in an engine decision, from the subscribe to the decision that
  includes the last frame.
* **latency**: the same three-process set-up at a fixed 2,000 and 200 msgs/s; each
  frame carries its send time (CLOCK_MONOTONIC, shared by the processes), so
  tick-to-decision runs from the server's send to the engine's return; baseline: pybit's
  callback. p50/p99/p99.9 and the process CPU share (process CPU time / wall time).
* **order path**: against the simulator (in this process, loopback): place a Market
  IOC -> fill noticed, by the private stream's execution push (ours) vs REST polling
  of ``order/realtime`` at the bot's 500 ms interval (baseline), p50/p99.
* **memory**: RSS after 1 M messages through the pipeline vs after 100 k (flat = x1.00).

``--quick`` runs every row on small counts (the test suite uses it): same rows, same
JSON keys, figures not meaningful.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import attrs
import trio
from loguru import logger

from ..bybit.marketdata import MarketData
from ..bybit.parse import ParseStats
from ..core.model import (
    BookTop,
    BookUpdate,
    Event,
    Instrument,
    OpenOrders,
    PositionSnapshot,
    Side,
    SymbolSelected,
    Trade,
    TradeTicks,
)
from ..core.strategy import Engine, EngineConfig

__all__ = ["BenchPlan", "main_bench", "make_frames", "naive", "ours", "run_bench"]

SYMBOL = "SOLUSDT"
TICK = Decimal("0.01")
_MID_TICKS = 15_000  # 150.00


# ---------------------------------------------------------------- the synthetic stream


def _dumps(obj: object) -> bytes:
    # Not orjson: its bytes keep a few KiB of capacity each, and a million-frame list
    # would then measure the allocator instead of the memory row's pipeline.
    return json.dumps(obj, separators=(",", ":")).encode()


def make_frames(n: int, seed: int = 7) -> list[bytes]:
    """A snapshot then ``n`` frames: book deltas, and a trade frame every 5th.

    Deltas change 1-3 of the 50 levels a side (a delete only of a level in the book,
    as Bybit's stream does: pybit's book fails on anything else).
    """
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
        return _dumps(msg)

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
                _dumps(
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
            # a consistent stream, as Bybit's is: only levels in the book are deleted
            changes, book, sign = (b, bids, -1) if rng.random() < 0.5 else (a, asks, 1)
            level = _MID_TICKS + sign * rng.randint(1, 50)
            if level in changes:
                continue  # one change per level and frame
            if level in book and len(book) > 10 and rng.random() < 0.2:
                del book[level]
                changes[level] = 0.0
            else:
                book[level] = changes[level] = rng.uniform(1, 500)
        frames.append(book_frame("delta", b, a, u))
    return frames


def _instrument() -> Instrument:
    return Instrument(
        symbol=SYMBOL,
        tick_size=TICK,
        qty_step=Decimal("0.1"),
        min_qty=Decimal("0.1"),
        max_qty=Decimal(10000),
        max_mkt_qty=Decimal(5000),
        min_notional=Decimal(5),
    )


def _engine(cls: type[Engine] = Engine) -> Engine:
    # stale_ms huge: the loopback rows stamp frames with a monotonic clock, not Bybit's
    engine = cls(EngineConfig(session_tag="bench", stale_ms=10**15))
    engine.handle(SymbolSelected(symbol=SYMBOL, instrument=_instrument()), 0)
    engine.handle(PositionSnapshot(symbol=SYMBOL, side=None, size=Decimal(0)), 0)
    engine.handle(OpenOrders(symbol=SYMBOL, order_link_ids=()), 0)
    return engine


# ---------------------------------------------------------------- pipeline


Step = Callable[[bytes], object]


def ours() -> Step:
    """Our hot path: the market-data protocol (typed decoding, integer-tick book), engine."""
    market = MarketData(ParseStats(name="bench"))
    market.follow(SYMBOL, TICK)
    frame, book = market.frame, market.book
    assert book is not None
    handle = _engine().handle
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


def _pct(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def bench_pipeline(frames: list[bytes], make: Callable[[], Step]) -> dict[str, float]:
    """msgs/s (a plain loop) and p50/p99 per message (a second, timed loop) of one pipeline."""
    step = make()
    clock = time.perf_counter
    start = clock()
    for raw in frames:
        step(raw)
    rate = len(frames) / (clock() - start)
    step = make()
    lat: list[float] = []
    for raw in frames:
        t0 = clock()
        step(raw)
        lat.append(clock() - t0)
    return {"msgs_per_s": rate, "p50_us": _pct(lat, 50) * 1e6, "p99_us": _pct(lat, 99) * 1e6}


# ---------------------------------------------------------------- memory


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


# ---------------------------------------------------------------- the frame server


@contextmanager
def frame_server(frames: int) -> Iterator[int]:
    """``scalper.bench.server`` in a child process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "scalper.bench.server", "--frames", str(frames)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            raise RuntimeError(f"bench frame server did not start (said {line!r})")
        yield int(line[1])
    finally:
        proc.kill()
        proc.wait()


def _stamp_us() -> int:
    from .server import stamp_us

    return stamp_us()


@attrs.define
class _Run:
    """What one client run measured."""

    frames: int = 0  #: frames received and handled
    decisions: int = 0  #: engine decisions on market data (ours) / callbacks (pybit)
    superseded: int = 0  #: book updates replaced by a newer one before the engine saw them
    lag_dropped: int = 0  #: of those, the ones counted as the strategy lagging (ours)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    latencies_us: list[float] = attrs.Factory(list)

    @property
    def rate(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency(self) -> dict[str, float]:
        lat = self.latencies_us
        return {
            "p50_us": _pct(lat, 50),
            "p99_us": _pct(lat, 99),
            "p999_us": _pct(lat, 99.9),
            "cpu_pct": 100.0 * self.cpu_s / self.elapsed_s if self.elapsed_s else 0.0,
            "decided": len(lat),
        }


class _TimedEngine(Engine):
    """The engine, reporting each market decision to the bench (its only hook)."""

    on_market: Callable[[Event], None] = staticmethod(lambda event: None)

    def handle(self, event: Event, now_ms: int) -> list[Any]:
        out = super().handle(event, now_ms)
        if type(event) is BookUpdate or type(event) is TradeTicks:
            self.on_market(event)
        return out


def _latency_of(event: Event, now_us: int) -> float:
    if type(event) is BookUpdate:
        return float(now_us - event.top.ts_ms)
    assert isinstance(event, TradeTicks)
    return float(now_us - min(t.ts_ms for t in event.trades))  # the oldest: its true age


async def _ours(url: str, expect: int, timeout_s: float, stamped: bool) -> _Run:
    """The real market-data task and strategy runner on ``url`` until ``expect`` frames."""
    from ..app.feed import MarketFeed
    from ..app.journal import Journal, JournalRecord
    from ..app.market_data import run_market_data
    from ..app.metrics import Metrics
    from ..app.strategy import OrderCommand, PositionRequest, StrategyRunner
    from ..bybit.ws import WsPolicy

    run = _Run()
    metrics = Metrics()
    feed = MarketFeed(metrics)
    engine = _engine(_TimedEngine)
    assert isinstance(engine, _TimedEngine)
    done = trio.Event()
    clock = time.perf_counter

    def on_market(event: Event) -> None:
        run.decisions += 1
        if stamped:
            run.latencies_us.append(_latency_of(event, _stamp_us()))
        received = metrics.book_updates + metrics.trade_messages
        if received >= expect and not feed.pending_book and not feed.pending_trades:
            run.elapsed_s = clock() - t0
            done.set()

    engine.on_market = on_market
    journal_send, journal_recv = trio.open_memory_channel[JournalRecord](1000)
    orders_send, orders_recv = trio.open_memory_channel[OrderCommand](64)
    subs_send, _subs_recv = trio.open_memory_channel[str](4)
    req_send, req_recv = trio.open_memory_channel[PositionRequest](16)
    control_send, control_recv = trio.open_memory_channel[Event](16)
    runner = StrategyRunner(
        engine,
        clock_ms=lambda: time.time_ns() // 1_000_000,
        orders=orders_send,
        subscriptions=subs_send,
        position_requests=req_send,
        journal=Journal(journal_send, lambda: time.time_ns() // 1_000_000),
        metrics=metrics,
    )

    async def discard(channel: trio.MemoryReceiveChannel[Any]) -> None:
        async for _ in channel:
            pass

    async def on_reconnect(reason: str) -> None:
        pass

    async with trio.open_nursery() as nursery:
        for channel in (journal_recv, orders_recv, req_recv):
            nursery.start_soon(discard, channel)
        await nursery.start(partial(runner.run, feed.receiver, control_recv))
        follow_send, follow_recv = trio.open_memory_channel[str](4)
        await nursery.start(
            partial(run_market_data, policy=WsPolicy()),
            url,
            follow_recv,
            feed,
            {SYMBOL: _instrument()},
            on_reconnect,
            metrics,
        )
        cpu0 = time.process_time()
        t0 = clock()
        await follow_send.send(SYMBOL)
        with trio.move_on_after(timeout_s):
            await done.wait()
        run.cpu_s = time.process_time() - cpu0
        if not done.is_set():
            run.elapsed_s = clock() - t0
        run.frames = metrics.book_updates + metrics.trade_messages
        run.superseded = feed.coalesced + metrics.market_dropped
        run.lag_dropped = metrics.market_dropped
        nursery.cancel_scope.cancel()
    del control_send
    return run


def _pybit(url: str, expect: int, timeout_s: float, stamped: bool) -> _Run:
    """pybit's ``WebSocket`` (its thread, json, its list book) with a counting callback."""
    import logging

    from pybit.unified_trading import WebSocket

    logging.getLogger("pybit").setLevel(logging.WARNING)
    logging.getLogger("websocket").setLevel(logging.WARNING)

    class _Local(WebSocket):  # type: ignore[misc]
        def _connect(self, _url: str) -> None:
            super()._connect(url)

    run = _Run()
    done = threading.Event()
    lock = threading.Lock()
    clock = time.perf_counter

    def callback(message: dict[str, Any]) -> None:
        with lock:
            run.frames += 1
            if stamped:
                now = _stamp_us()
                if message["topic"].startswith("orderbook"):
                    run.latencies_us.append(float(now - message["ts"]))
                else:
                    run.latencies_us.append(float(now - min(t["T"] for t in message["data"])))
            if run.frames >= expect:
                run.elapsed_s = clock() - t0
                done.set()

    ws = _Local(testnet=False, channel_type="linear")
    try:
        ws.trade_stream(SYMBOL, callback)
        cpu0 = time.process_time()
        t0 = clock()
        ws.orderbook_stream(50, SYMBOL, callback)  # the server starts on this one
        finished = done.wait(timeout_s)
        run.cpu_s = time.process_time() - cpu0
        if not finished:
            run.elapsed_s = clock() - t0
        run.decisions = run.frames
    finally:
        ws.exit()
    return run


async def _ceiling(url: str, expect: int, timeout_s: float) -> _Run:
    """trio-websocket alone: receive frames, do nothing with them (opened by our own
    connector, ``ws.default_connect``, so with the same queue and buffer settings)."""
    from ..bybit.ws import WsPolicy, default_connect

    run = _Run()
    clock = time.perf_counter
    async with default_connect(WsPolicy())(url) as ws:
        topics = [f"orderbook.50.{SYMBOL}", f"publicTrade.{SYMBOL}"]
        cpu0 = time.process_time()
        t0 = clock()
        await ws.send_message(json.dumps({"op": "subscribe", "args": topics}))
        with trio.move_on_after(timeout_s):
            while run.frames < expect:
                await ws.get_message()
                run.frames += 1
        run.elapsed_s = clock() - t0
        run.cpu_s = time.process_time() - cpu0
    run.decisions = run.frames
    return run


# ---------------------------------------------------------------- order path


async def _order_path(rounds: int, poll_s: float) -> tuple[list[float], list[float]]:
    """Place -> fill noticed (ms) by private push and by REST polling, per round."""
    import httpx

    from ..bybit.auth import Credentials
    from ..bybit.rest import BybitRest
    from ..bybit.streams import open_private_stream
    from ..core.model import Fill, OrderIntent, OrderStatus, OrderType, TimeInForce
    from ..sim import SimConfig, open_sim

    creds = Credentials(api_key="sim-key", api_secret="sim-secret")
    push: list[float] = []
    polled: list[float] = []
    clock = time.perf_counter
    fills: dict[str, float] = {}
    arrived = trio.Event()
    async with (
        open_sim(SimConfig(seed=3, symbols=(SYMBOL,))) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as client,
    ):
        rest = BybitRest(client, creds)
        await rest.sync_clock()
        inst = {i.symbol: i for i in await rest.instruments()}[SYMBOL]
        async with (
            open_private_stream(sim.ws_private_url, creds) as stream,
            trio.open_nursery() as nursery,
        ):

            async def read() -> None:
                nonlocal arrived
                async for event in stream:
                    if isinstance(event, Fill):
                        fills.setdefault(event.order_link_id, clock())
                        arrived.set()
                        arrived = trio.Event()

            nursery.start_soon(read)
            for i in range(rounds):
                link = f"bench-{os.getpid()}-{i}"
                intent = OrderIntent(
                    symbol=SYMBOL,
                    side=Side.BUY if i % 2 == 0 else Side.SELL,
                    order_type=OrderType.MARKET,
                    qty=inst.min_qty,
                    order_link_id=link,
                    time_in_force=TimeInForce.IOC,
                )
                with trio.fail_after(10):
                    t0 = clock()
                    await rest.place_order(intent)
                    while True:  # the REST way: read at once, then every poll_s
                        update = await rest.order(SYMBOL, link)
                        if update is not None and update.status is OrderStatus.FILLED:
                            polled.append((clock() - t0) * 1e3)
                            break
                        await trio.sleep(poll_s)
                    while link not in fills:
                        await arrived.wait()
                    push.append((fills[link] - t0) * 1e3)
                # under Bybit's 10/s order-entry limit, so our client's pacer never waits
                await trio.sleep(0.15)
            nursery.cancel_scope.cancel()
    return push, polled


# ---------------------------------------------------------------- the whole run


@attrs.frozen(kw_only=True)
class BenchPlan:
    """How much of everything one bench run does."""

    pipeline_frames: int = 200_000
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
    bench_pipeline(frames[:2000], ours)  # warm both paths: no first-call costs measured
    bench_pipeline(frames[:2000], naive)
    o, b = bench_pipeline(frames, ours), bench_pipeline(frames, naive)
    result["pipeline"] = {
        "frames": len(frames),
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
        r_ours = trio.run(_ours, url, expect, timeout, False)
        progress("loopback: pybit")
        r_pybit = _pybit(url, expect, timeout, False)
        progress("loopback: trio-websocket receive-only")
        r_ceiling = trio.run(_ceiling, url, expect, timeout)
        result["loopback"] = {
            "frames": expect,
            "ours": _loop_row(r_ours),
            "pybit": _loop_row(r_pybit),
            "receive_only": _loop_row(r_ceiling),
            "ratio_vs_pybit": _ratio(r_ours.rate, r_pybit.rate),
            "share_of_ceiling": _ratio(r_ours.rate, r_ceiling.rate),
        }
        result["latency"] = {}
        for rate in plan.rates:
            count = int(rate * plan.rate_seconds)
            url = f"ws://127.0.0.1:{port}/rate/{rate:g}/{plan.rate_seconds:g}"
            wait = plan.rate_seconds + 5.0
            progress(f"latency at {rate:g} msgs/s: ours")
            lo = trio.run(_ours, url, count + 1, wait, True)
            progress(f"latency at {rate:g} msgs/s: pybit")
            lp = _pybit(url, count + 1, wait, True)
            result["latency"][f"{rate:g}"] = {
                "rate": rate,
                "seconds": plan.rate_seconds,
                "ours": lo.latency(),
                "pybit": lp.latency(),
            }

    progress("order path")
    push, polled = trio.run(_order_path, plan.order_rounds, plan.poll_s)
    result["order_path"] = {
        "rounds": plan.order_rounds,
        "poll_interval_ms": plan.poll_s * 1e3,
        "push": {"p50_ms": _pct(push, 50), "p99_ms": _pct(push, 99)},
        "rest_poll": {"p50_ms": _pct(polled, 50), "p99_ms": _pct(polled, 99)},
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


def _loop_row(run: _Run) -> dict[str, float]:
    return {
        "msgs_per_s": run.rate,
        "frames": run.frames,
        "decisions": run.decisions,
        "superseded": run.superseded,
        "lag_dropped": run.lag_dropped,
        "seconds": run.elapsed_s,
        "cpu_pct": 100.0 * run.cpu_s / run.elapsed_s if run.elapsed_s else 0.0,
    }


# ---------------------------------------------------------------- text output


def _row(name: str, ours_v: float, base_v: float, unit: str, better_high: bool) -> str:
    ratio = (ours_v / base_v if better_high else base_v / ours_v) if ours_v and base_v else 0.0
    return (
        f"  {name:<30} ours {ours_v:>12,.1f} {unit:<6} "
        f"baseline {base_v:>12,.1f} {unit:<6} x{ratio:5.2f}"
    )


def render(result: dict[str, Any]) -> str:
    """The text report: one row per figure, ours beside the baseline, with the ratio."""
    p, lo, mem, op = result["pipeline"], result["loopback"], result["memory"], result["order_path"]
    lines = [
        "scalper bench: ours vs baseline, one run (x > 1: ours better by that factor)",
        f"machine: {result['machine']['cpus']} cpus, python {result['machine']['python']}; "
        f"before: {result['machine']['uptime_before']}",
        f"pipeline: {p['frames']:,} synthetic frames -> decode -> book -> engine, no network "
        "(baseline: json + Decimal book + full sort, same engine)",
        _row("throughput", p["ours"]["msgs_per_s"], p["naive"]["msgs_per_s"], "msg/s", True),
        _row("per message p50", p["ours"]["p50_us"], p["naive"]["p50_us"], "us", False),
        _row("per message p99", p["ours"]["p99_us"], p["naive"]["p99_us"], "us", False),
        f"loopback: {lo['frames']:,} frames from a server process over 127.0.0.1 as fast as "
        "possible; ours = market-data task + strategy runner (received and decided)",
        _row(
            "vs pybit WebSocket", lo["ours"]["msgs_per_s"], lo["pybit"]["msgs_per_s"], "msg/s", True
        ),
        _row(
            "vs trio-websocket receive-only",
            lo["ours"]["msgs_per_s"],
            lo["receive_only"]["msgs_per_s"],
            "msg/s",
            True,
        ),
        _row("CPU share vs pybit", lo["ours"]["cpu_pct"], lo["pybit"]["cpu_pct"], "%", False),
        f"  (ours: {lo['ours']['decisions']:,} engine decisions, "
        f"{lo['ours']['superseded']:,} book updates superseded by a newer one first, "
        f"{lo['ours']['lag_dropped']:,} of them while lagging)",
    ]
    for key, lat in result["latency"].items():
        o, b = lat["ours"], lat["pybit"]
        lines.append(
            f"latency at {float(key):,.0f} msg/s for {lat['seconds']:g} s: frame sent -> "
            f"decided (baseline: pybit callback); ours {o['decided']:,} decided"
        )
        lines.append(_row("tick-to-decision p50", o["p50_us"], b["p50_us"], "us", False))
        lines.append(_row("tick-to-decision p99", o["p99_us"], b["p99_us"], "us", False))
        lines.append(_row("tick-to-decision p99.9", o["p999_us"], b["p999_us"], "us", False))
        lines.append(_row("CPU share", o["cpu_pct"], b["cpu_pct"], "%", False))
    lines.append(
        f"order path: {op['rounds']} Market IOC orders on the simulator (ours: private push; "
        f"baseline: REST polling every {op['poll_interval_ms']:g} ms)"
    )
    lines.append(
        _row(
            "place -> fill noticed p50",
            op["push"]["p50_ms"],
            op["rest_poll"]["p50_ms"],
            "ms",
            False,
        )
    )
    lines.append(
        _row(
            "place -> fill noticed p99",
            op["push"]["p99_ms"],
            op["rest_poll"]["p99_ms"],
            "ms",
            False,
        )
    )
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
    as_json = getattr(args, "json", False)

    def progress(what: str) -> None:
        sys.stderr.write(f"bench: {what}...\n")

    # The bot's own log lines (connects, the engine's once-per-state notes) would only
    # interleave with the report; every figure they could tell is in it.
    logger.disable("scalper")
    try:
        result = run_bench(plan, progress)
    finally:
        logger.enable("scalper")
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render(result))
    return 0
