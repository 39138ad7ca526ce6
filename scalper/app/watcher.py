"""The notice watcher: notices derived from the engine's state after every event.

It never runs inside the trading path: it waits for the engine to change (or a second
to pass) and compares what it sees with what it saw (``_Seen``): a position appeared
(entry) or went (exit, with its net PnL once the close's fee is booked), the engine
halted, the market stream fell silent for more than ``STREAM_DOWN_S`` or came back, a
day's loss came within 20 % of its limit. It also samples the equity the dashboard
draws.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import trio

from ..core.model import EngineState

if TYPE_CHECKING:
    from ..core.strategy import Engine
    from .remote import Control

__all__ = ["EQUITY_EVERY_S", "LOSS_WARN_FRACTION", "STREAM_DOWN_S", "run_watch"]

#: a market stream silent this long is reported
STREAM_DOWN_S = 30.0
#: a day's loss at this fraction of the limit is reported (within 20 %) ...
LOSS_WARN_FRACTION = Decimal("0.8")
#: ... once, until it falls back below this fraction
LOSS_REARM_FRACTION = Decimal("0.7")
#: the watcher's periodic checks (stream, loss, equity sample)
WATCH_INTERVAL_S = 1.0
#: how long an exit waits for its fills' fees before its notice goes out without them
EXIT_PNL_WAIT_S = 3.0
#: equity samples kept for the dashboard's sparkline (one per EQUITY_EVERY_S)
EQUITY_EVERY_S = 5.0


@attrs.define
class _Seen:
    state: EngineState | None = None
    holding: bool = False
    net_at_entry: Decimal = Decimal(0)
    trips_at_exit: int = 0
    exit_at: float | None = None
    exit_text: str = ""
    market_count: int = -1
    market_since: float = 0.0
    stream_down: bool = False
    loss_warned: bool = False
    equity_at: float = -math.inf


async def run_watch(
    control: Control,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Derive notices from the engine after every event (and every second) until cancelled."""
    seen = _Seen(state=control.engine.state, holding=control.engine.position is not None)
    seen.market_since = trio.current_time()
    task_status.started()
    runner = control.runner

    def changed(engine: Engine) -> bool:
        return engine.state is not seen.state or (engine.position is not None) != seen.holding

    while True:
        with trio.move_on_after(WATCH_INTERVAL_S):
            await runner.wait_until(changed)
        _check(control, seen, trio.current_time())


def _check(control: Control, seen: _Seen, now_s: float) -> None:
    """One pass of every notice rule."""
    engine = control.engine
    publish = control.notifier.publish
    position = engine.position
    symbol = engine.symbol or "-"
    if position is not None and not seen.holding:
        seen.holding = True
        seen.net_at_entry = control.pnl.net
        seen.exit_at = None
        entry = position.entry_price if position.entry_price is not None else "?"
        publish(
            "entry",
            f"entry {position.side.value} {position.size} {symbol} @ {entry} "
            f"(stop {_fmt(engine.stop_price)}, take-profit {_fmt(engine.target_price)})",
        )
    elif position is None and seen.holding:
        seen.holding = False
        seen.exit_at = now_s
        seen.trips_at_exit = control.pnl.trip_count
        seen.exit_text = f"exit {symbol}"
    if seen.exit_at is not None:
        # the close's fill (with its fee) is booked shortly after the engine is flat
        booked = control.pnl.trip_count > seen.trips_at_exit
        if booked or now_s - seen.exit_at >= EXIT_PNL_WAIT_S:
            net = control.pnl.net - seen.net_at_entry
            trips = control.pnl.trips
            detail = ""
            if booked and trips:
                trip = trips[-1]
                detail = f" {trip.side} {trip.qty} {trip.entry} -> {trip.exit}"
            publish("exit", f"{seen.exit_text}{detail}: net pnl {net:.4f}")
            seen.exit_at = None
    if engine.state is not seen.state:
        if engine.state is EngineState.HALTED:
            publish("halt", f"halted: {engine.halt_reason}")
        seen.state = engine.state
    metrics = control.metrics
    count = metrics.book_updates + metrics.trade_messages
    if count != seen.market_count:
        if seen.stream_down:
            publish("stream", f"market stream back after {now_s - seen.market_since:.0f} s")
        seen.market_count, seen.market_since, seen.stream_down = count, now_s, False
    elif engine.symbol and not seen.stream_down and now_s - seen.market_since > STREAM_DOWN_S:
        seen.stream_down = True
        publish("stream", f"market stream down: no data for {STREAM_DOWN_S:.0f} s on {symbol}")
    now_ms = int(control.clock_ms())
    limit = engine.config.risk.max_daily_loss_usd
    loss = engine.risk.daily_loss(now_ms, engine.unrealised_pnl())
    if not seen.loss_warned and loss >= limit * LOSS_WARN_FRACTION:
        seen.loss_warned = True
        publish("loss", f"daily loss {loss:.2f} is within 20 % of the limit {limit}")
    elif seen.loss_warned and loss < limit * LOSS_REARM_FRACTION:
        seen.loss_warned = False
    if now_s - seen.equity_at >= EQUITY_EVERY_S:
        seen.equity_at = now_s
        value = control.pnl.net + engine.unrealised_pnl()
        control.equity.append((now_ms, float(value)))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"
