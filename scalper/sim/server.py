"""Running the simulator: hypercorn (trio worker) plus the market task, in one nursery.

``open_sim(SimConfig(...))`` is the in-process entry point (tests, ``scalper run``
without keys); ``scalper exchange`` wraps the same thing in its own process. The
market task steps the synthetic market at ``rate`` steps per second of wall time, in
small batches, so the REST timestamp check and the stream timestamps share one clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .app import SimApp
from .specs import specs_for
from .venue import Exchange
from .ws import WsContext

__all__ = ["Sim", "SimConfig", "open_sim", "wall_ms"]


#: market steps per second by default: ~40 per symbol, about Bybit's 20 ms book interval
DEFAULT_RATE = 500.0


def _symbols(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if value else None


def _rate(value: float | None) -> float:
    rate = DEFAULT_RATE if value is None else float(value)
    if not rate > 0:
        raise ValueError(f"rate must be > 0 steps/s, got {value}")
    return rate


def wall_ms() -> int:
    """Wall-clock time in ms (Bybit's clock; REST timestamps are checked against it)."""
    return time.time_ns() // 1_000_000


@attrs.frozen(kw_only=True)
class SimConfig:
    """How to run the simulated exchange."""

    seed: int = 1
    #: listed symbols (None: the default dozen)
    symbols: tuple[str, ...] | None = attrs.field(default=None, converter=_symbols)
    #: market steps per second over all symbols (each step: one book delta per depth)
    rate: float = attrs.field(default=DEFAULT_RATE, converter=_rate)
    api_key: str = "sim-key"
    api_secret: str = attrs.field(default="sim-secret", repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    #: WebSocket connections that send nothing for this long are closed (Bybit: ~10 min)
    ws_idle_timeout_s: float = 600.0
    start_balance: Decimal = Decimal(100_000)
    #: a hedge-mode account (position rows with positionIdx 1 and 2; positionIdx 0
    #: refused), so a client's hedge-mode detection can be tested
    hedge_mode: bool = False


@attrs.define
class Sim:
    """A running simulator: its URLs, the fault and state API, the venue for tests."""

    host: str
    port: int
    app: SimApp
    exchange: Exchange

    @property
    def rest_url(self) -> str:
        """Base URL for REST, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_public_url(self) -> str:
        """The public linear stream."""
        return f"ws://{self.host}:{self.port}/v5/public/linear"

    @property
    def ws_private_url(self) -> str:
        """The private stream."""
        return f"ws://{self.host}:{self.port}/v5/private"

    def inject(self, fault: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault (same JSON as ``POST /sim/faults``); ValueError when bad."""
        return self.app.inject(fault)

    def state(self) -> dict[str, Any]:
        """Same dict as ``GET /sim/state``."""
        return self.app.state()


def build(config: SimConfig) -> tuple[Exchange, SimApp]:
    """The venue and the ASGI app for ``config`` (no sockets yet)."""
    exchange = Exchange(
        specs_for(config.symbols),
        seed=config.seed,
        rate=config.rate,
        clock=wall_ms,
        credentials={config.api_key: config.api_secret},
        start_balance=config.start_balance,
        hedge_mode=config.hedge_mode,
    )
    app = SimApp(exchange, api_key=config.api_key, idle_timeout_s=config.ws_idle_timeout_s)
    return exchange, app


#: a public client this many frames behind pauses the market (backpressure) ...
BACKLOG_LIMIT = 2_000
#: ... for at most this long; then the clients still behind are dropped as slow consumers
SLOW_CONSUMER_S = 2.0


async def run_market(exchange: Exchange, ws: WsContext) -> None:
    """Step the market in real time, forever (batches every few ms).

    When a public client falls behind (more than ``BACKLOG_LIMIT`` frames queued) the
    market holds still instead of queueing without bound, so at a rate above what the
    sockets can carry the stream runs at the sockets' speed (what a load test measures).
    A client that stays behind for ``SLOW_CONSUMER_S`` is disconnected, as Bybit drops
    slow consumers, so one stalled reader cannot freeze the market for everyone.
    """
    interval = 0.01 if exchange.market.rate <= 2_000 else 0.003
    max_steps = max(50, int(exchange.market.rate * 0.02))
    exchange.advance(wall_ms())
    stalled_since: float | None = None
    while True:
        await trio.sleep(interval)
        now = wall_ms()
        if ws.backlog() > BACKLOG_LIMIT:
            if stalled_since is None:
                stalled_since = trio.current_time()
            if trio.current_time() - stalled_since < SLOW_CONSUMER_S:
                exchange.hold(now)
                continue
            ws.drop_slow(BACKLOG_LIMIT)
        stalled_since = None
        exchange.advance(now, max_steps=max_steps)


@asynccontextmanager
async def open_sim(config: SimConfig | None = None) -> AsyncIterator[Sim]:
    """Serve the simulator on loopback for the duration of the block."""
    config = config or SimConfig()
    exchange, app = build(config)
    hconfig = HypercornConfig()
    hconfig.bind = [f"{config.host}:{config.port}"]
    hconfig.accesslog = None
    # hypercorn's default ("-") gives it a stderr handler of its own: route it through
    # stdlib logging instead, which scalper.logging forwards to loguru (with redaction)
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    hconfig.loglevel = "WARNING"
    hconfig.graceful_timeout = 0.5
    hconfig.websocket_ping_interval = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, hconfig, mode="asgi")  # type: ignore[arg-type]
        )
        port = int(binds[0].rsplit(":", 1)[1])
        nursery.start_soon(run_market, exchange, app.ws)
        try:
            yield Sim(host=config.host, port=port, app=app, exchange=exchange)
        finally:
            app.ws.disconnect(None, "server shutting down")
            nursery.cancel_scope.cancel()
