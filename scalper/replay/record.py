"""Capturing a live public stream to a recording file (the trio side of ``scalper record``).

``record_stream`` subscribes ``orderbook.50.{symbol}`` and ``publicTrade.{symbol}``
through the bot's own ``scalper.bybit.ws.open_ws`` (same heartbeat, reconnect and
resubscribe) and writes every data frame, raw, with its local receive time.

It also feeds every frame to the market-data protocol the bot's stream uses
(``bybit.marketdata.MarketData``), for one reason: when the book turns invalid (a gap, a
crossed book, a lost book frame) the bot resubscribes and Bybit answers with a fresh
snapshot. A recorder that did not do the same would capture a stream that never
repairs, and the replay of everything after the first gap would be of an invalid book.
So it resubscribes where the protocol asks (marked ``resubscribed`` in the file), and
connection drops and reconnects are marked (``disconnected`` / ``reconnected``) so the
replay reproduces the resync the bot went through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from decimal import Decimal

import attrs
import httpx
import trio
from loguru import logger

from scalper.bybit.errors import BybitError
from scalper.bybit.marketdata import MarketData, public_topics
from scalper.bybit.parse import ParseStats
from scalper.bybit.rest import BybitRest, RetryPolicy
from scalper.bybit.ws import Connected, ConnectFn, Disconnected, WsOptions, WsPolicy, open_ws
from scalper.core.model import Instrument

from .recording import RecordingWriter

__all__ = [
    "RecordStats",
    "SymbolNotListed",
    "fetch_clock_offset",
    "fetch_instrument",
    "record_stream",
    "topics_for",
]

#: the public topics the bot follows for a symbol, which a recording holds
topics_for = public_topics


def wall_ms() -> int:
    """Local wall clock, epoch ms: what the bot's engine uses as ``now_ms``."""
    return time.time_ns() // 1_000_000


class SymbolNotListed(Exception):
    """instruments-info answered, and the symbol is not in it."""


async def fetch_instrument(
    rest_url: str, symbol: str, *, timeout_s: float = 5.0
) -> Instrument | None:
    """The symbol's trading rules from instruments-info; None when REST is unreachable.

    Raises ``SymbolNotListed`` when the exchange answered without the symbol: recording
    a topic nobody publishes would only produce an empty file.
    """
    async with httpx.AsyncClient(base_url=rest_url, timeout=timeout_s) as client:
        rest = BybitRest(client, retry=RetryPolicy(max_attempts=2, total_budget_s=timeout_s))
        try:
            with trio.fail_after(2 * timeout_s):
                instruments = await rest.instruments()
        except (BybitError, trio.TooSlowError) as exc:
            logger.warning("instruments-info at {} not reachable: {}", rest_url, exc)
            return None
    for instrument in instruments:
        if instrument.symbol == symbol:
            return instrument
    raise SymbolNotListed(f"{symbol} is not listed in instruments-info at {rest_url}")


async def fetch_clock_offset(rest_url: str, *, timeout_s: float = 5.0) -> int | None:
    """Exchange clock minus local clock (ms) from ``/v5/market/time``; None if unreachable.

    The live engine's ``now_ms`` is the local clock plus this offset, so a replay that
    wants the same staleness decisions needs it.
    """
    async with httpx.AsyncClient(base_url=rest_url, timeout=timeout_s) as client:
        rest = BybitRest(client, retry=RetryPolicy(max_attempts=2, total_budget_s=timeout_s))
        try:
            with trio.fail_after(2 * timeout_s):
                return await rest.sync_clock()
        except (BybitError, trio.TooSlowError) as exc:
            logger.warning("server time at {} not readable: {}", rest_url, exc)
            return None


@attrs.define
class RecordStats:
    """What a recording captured (printed at the end, checked by tests).

    What the frames held is counted by the market-data protocol that read them: its
    book and trade messages are read from ``market`` itself (as the backtest reads a
    player's), the parse errors by kind as a plain dict from ``parse_errors``.
    """

    market: MarketData
    frames: int = 0
    resubscribes: int = 0
    disconnects: int = 0
    reconnects: int = 0
    #: "duration", "interrupted" or "stream ended"
    stop_reason: str = ""

    @property
    def parse_errors(self) -> dict[str, int]:
        """Frames that could not be parsed, by kind."""
        return dict(self.market.stats.counts)


async def record_stream(
    url: str,
    symbol: str,
    tick_size: Decimal,
    writer: RecordingWriter,
    *,
    seconds: float | None = None,
    stop: trio.Event | None = None,
    connect: ConnectFn | None = None,
    policy: WsPolicy | None = None,
    clock_ms: Callable[[], int] = wall_ms,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> RecordStats:
    """Record until ``seconds`` have passed (connecting included), ``stop`` is set, or
    the stream gives up; returns the counts. The writer is flushed before returning.

    ``task_status.started()`` is called once subscribed (for ``nursery.start``).
    """
    market = MarketData(ParseStats(name="record"))
    stats = RecordStats(market)
    topics = market.follow(symbol, tick_size)
    deadline = trio.move_on_after(seconds) if seconds is not None else nullcontext()
    stats.stop_reason = "duration"
    try:
        with deadline:
            async with (
                open_ws(
                    url,
                    WsOptions(
                        connect=connect,
                        policy=policy or WsPolicy(),
                        name="record",
                        topics=topics,
                    ),
                ) as conn,
                trio.open_nursery() as nursery,
            ):
                task_status.started()
                if stop is not None:
                    nursery.start_soon(_cancel_on, stop, nursery.cancel_scope)
                async for item in conn:
                    t = clock_ms()
                    if isinstance(item, str | bytes):
                        writer.frame(t, item)
                        stats.frames += 1
                        market.frame(item)
                        action = market.take_resubscribe()
                        if action is not None:
                            stats.resubscribes += 1
                            writer.event(t, "resubscribed", reason=action.reason)
                            logger.warning("book invalid ({}): resubscribing", action.reason)
                            await conn.resubscribe(list(action.topics))
                    elif isinstance(item, Disconnected):
                        stats.disconnects += 1
                        market.invalidate(f"stream dropped: {item.reason}")
                        writer.event(t, "disconnected", reason=item.reason)
                    elif isinstance(item, Connected) and item.reconnect:
                        stats.reconnects += 1
                        writer.event(t, "reconnected", count=item.count)
                stats.stop_reason = "stream ended"
                nursery.cancel_scope.cancel()
        if stop is not None and stop.is_set():
            stats.stop_reason = "interrupted"
    finally:
        writer.event(clock_ms(), "stopped", frames=stats.frames, reason=stats.stop_reason)
        writer.flush()
    return stats


async def _cancel_on(stop: trio.Event, scope: trio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
