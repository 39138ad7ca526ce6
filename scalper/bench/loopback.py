"""The network rows: one client at a time against the frame server, in another process.

Three clients on the same server and stream: ours (the real market-data task and
strategy runner, the engine reporting each market decision), pybit's ``WebSocket``
(its thread, json, its list book, a counting callback) and a bare trio-websocket loop
that only receives (the ceiling of the transport the bot used before ``bybit.wsfast``).
Each returns a ``Run``: frames, decisions, the phase's wall and process CPU time (every
thread of this process; the server is another process), and the latencies when the
frames carry their send time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import attrs
import trio

from ..core.model import BookUpdate, Event, TradeTicks
from ..core.strategy import Engine
from .clock import stamp_us
from .frames import SYMBOL, bench_engine, instrument
from .pipeline import pct

__all__ = ["Run", "ceiling_client", "frame_server", "our_client", "pybit_client"]


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


@attrs.define
class Run:
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
        """Frames per second of the phase."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_pct(self) -> float:
        """Process CPU time over wall time of the phase, in % of one core."""
        return 100.0 * self.cpu_s / self.elapsed_s if self.elapsed_s else 0.0

    def latency(self) -> dict[str, float]:
        """The latency row's figures."""
        lat = self.latencies_us
        return {
            "p50_us": pct(lat, 50),
            "p99_us": pct(lat, 99),
            "p999_us": pct(lat, 99.9),
            "cpu_pct": self.cpu_pct,
            "decided": len(lat),
        }

    def throughput(self) -> dict[str, float]:
        """The loopback row's figures."""
        return {
            "msgs_per_s": self.rate,
            "frames": self.frames,
            "decisions": self.decisions,
            "superseded": self.superseded,
            "lag_dropped": self.lag_dropped,
            "seconds": self.elapsed_s,
            "cpu_pct": self.cpu_pct,
        }


class _TimedEngine(Engine):
    """The engine, reporting each market decision to the bench (its only hook)."""

    on_market: Callable[[Event], None] = staticmethod(lambda event: None)

    def handle(self, event: Event, now_ms: int) -> list[Any]:
        # perf: the hook's own cost counts in our CPU figure, so it is kept to the
        # timing itself: Engine.handle called directly (no super() object per message)
        out = Engine.handle(self, event, now_ms)
        if type(event) is BookUpdate or type(event) is TradeTicks:
            self.on_market(event)
        return out


async def our_client(url: str, expect: int, timeout_s: float, stamped: bool) -> Run:
    """The real market-data task and strategy runner on ``url`` until ``expect`` frames."""
    from ..app.feed import MarketFeed
    from ..app.journal import Journal, JournalRecord
    from ..app.market_data import run_market_data
    from ..app.metrics import Metrics
    from ..app.strategy import OrderCommand, PositionRequest, StrategyRunner
    from ..bybit.ws import WsPolicy

    run = Run()
    metrics = Metrics()
    feed = MarketFeed(metrics)
    engine = bench_engine(_TimedEngine)
    assert isinstance(engine, _TimedEngine)
    done = trio.Event()
    clock = time.perf_counter

    def on_market(event: Event) -> None:
        run.decisions += 1
        if stamped:  # the frame's age, as pybit's callback takes it (no call level more)
            now = stamp_us()
            if type(event) is BookUpdate:
                run.latencies_us.append(float(now - event.top.ts_ms))
            else:
                assert isinstance(event, TradeTicks)
                oldest = min(t.ts_ms for t in event.trades)  # a batch's true age
                run.latencies_us.append(float(now - oldest))
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
            {SYMBOL: instrument()},
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


def pybit_client(url: str, expect: int, timeout_s: float, stamped: bool) -> Run:
    """pybit's ``WebSocket`` (its thread, json, its list book) with a counting callback."""
    import logging

    from pybit.unified_trading import WebSocket

    logging.getLogger("pybit").setLevel(logging.WARNING)
    logging.getLogger("websocket").setLevel(logging.WARNING)

    class _Local(WebSocket):  # type: ignore[misc]
        def _connect(self, _url: str) -> None:
            super()._connect(url)

    run = Run()
    done = threading.Event()
    lock = threading.Lock()
    clock = time.perf_counter

    def callback(message: dict[str, Any]) -> None:
        with lock:
            run.frames += 1
            if stamped:
                now = stamp_us()
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


async def ceiling_client(url: str, expect: int, timeout_s: float, transport: str = "trio") -> Run:
    """A transport alone: receive frames, do nothing with them. ``"trio"``:
    trio-websocket, opened by ``ws.default_connect`` (the same queue and buffer
    settings as the bot had); ``"wsfast"``: the bot's own ``bybit.wsfast`` connection."""
    from ..bybit.ws import WsPolicy, default_connect
    from ..bybit.wsfast import wsproto_connect

    policy = WsPolicy()
    connect = (
        default_connect(policy)
        if transport == "trio"
        else wsproto_connect(policy.connect_timeout_s, policy.disconnect_timeout_s)
    )
    run = Run()
    clock = time.perf_counter
    async with connect(url) as ws:
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
