"""The strategy task: feed events to the sans-IO engine, carry out its commands.

Two inputs, deliberately separate (in one channel, a burst of market data would queue
ahead of an order outcome, or a lossy send would drop one):

* market data (``BookUpdate``/``TradeTicks``), try-sent by the market-data task and
  dropped when this task lags: the next update supersedes it;
* control events (order outcomes, positions, symbol switches, halts, resyncs) on a
  lossless channel: awaited sends, never dropped.

Both loops run in one nursery and share the engine. ``Engine.handle`` is synchronous,
but carrying out its commands awaits (a full execution channel waits), so a lock keeps
each "handle + dispatch" whole: commands leave in the order the engine made them.

A market message that finds this runner idle (its market loop waiting on an empty feed,
its control loop waiting on an empty channel, the lock free) is handled at once in the
socket reader's task (``MarketFeed.deliver_to``): one scheduler pass per frame instead
of two, at a steady rate the larger part of the bot's CPU. The reader cannot await, so
the commands of such a message wait in a backlog for the flush task; until they have
left, every other message goes the usual way, and whoever holds the lock carries out
the backlog before handling anything: the commands still leave in the engine's order.
A timer feeds ``Tick`` so time rules (cooldowns, close retries, max hold) run even on
a silent market.

The safety commands: ``ProtectPosition`` goes to execution (its own lane: the exchange
stop never waits behind an order), ``RequestClosedPnl`` to reconcile (a read), and
``PersistRiskState`` straight to the journal (kind ``risk_state``: the day's realised
total and the halt latch, restored at the next start). The runner also remembers every
symbol the engine placed an order on this session (``traded``), so reconcile keeps
reading those positions after a switch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio
from loguru import logger

from ..core.model import (
    Alert,
    CancelOrder,
    Command,
    Event,
    Log,
    PersistRiskState,
    PlaceOrder,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    Subscribe,
    Tick,
    Transition,
)
from ..core.strategy import Engine, EngineError
from .control import send_control
from .feed import MarketMessage, MarketReceiver
from .journal import Journal
from .metrics import Metrics
from .risk_state import risk_state_data

MarketReceive = MarketReceiver
OrderCommand = PlaceOrder | CancelOrder | ProtectPosition
PositionRequest = str | RequestClosedPnl

__all__ = ["OrderCommand", "PositionRequest", "StrategyRunner"]


@attrs.define(eq=False)
class StrategyRunner:
    """Owns the engine inside the trio program and routes its commands."""

    engine: Engine
    _clock_ms: Callable[[], int] = attrs.field(kw_only=True)
    _orders: trio.MemorySendChannel[OrderCommand] = attrs.field(kw_only=True)
    _subscriptions: trio.MemorySendChannel[str] = attrs.field(kw_only=True)
    _position_requests: trio.MemorySendChannel[PositionRequest] = attrs.field(kw_only=True)
    _journal: Journal = attrs.field(kw_only=True)
    _metrics: Metrics = attrs.field(kw_only=True)
    #: called on every timer turn; the sd_notify watchdog ping
    _heartbeat: Callable[[], None] | None = attrs.field(default=None, kw_only=True)
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    #: tasks in ``wait_until``: with none, a change needs no new ``_changed`` event
    _waiters: int = attrs.field(default=0, init=False)
    #: the run's clock (``trio.current_time`` without its lookups, for each message)
    _now: Callable[[], float] = attrs.field(default=trio.current_time, init=False)
    #: symbols the engine placed an order on this session (reconcile watches them)
    traded: set[str] = attrs.field(factory=set, init=False)
    #: commands of a message handled in the reader's task, not carried out yet
    _backlog: list[Command] = attrs.field(factory=list, init=False)
    _backlog_at: float = attrs.field(default=0.0, init=False)
    _backlog_lot: trio.lowlevel.ParkingLot = attrs.field(
        factory=trio.lowlevel.ParkingLot, init=False
    )
    #: the control loop's task, while it runs (``_market_now`` asks whether it sleeps)
    _control_task: trio.lowlevel.Task | None = attrs.field(default=None, init=False)

    async def feed(self, event: Event) -> None:
        """Hand one event to the engine and carry out what it decides."""
        async with self._lock:
            await self._flush_backlog()
            try:
                commands = self.engine.handle(event, self._clock_ms())
            except EngineError as exc:
                # A caller bug (an order event the engine never issued): loud, but the
                # engine refused it and changed nothing, so trading state is intact.
                logger.error("engine refused {}: {}", type(event).__name__, exc)
                return
            for command in commands:
                await self._dispatch(command)
        self._notify_changed()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Keep the engine from handling anything for the block: a lagging strategy.

        Control events wait in their lossless channel; market data backs up and is
        dropped (counted) by the feed. Tests use it to make the lag deterministic.
        """
        async with self._lock:
            await self._flush_backlog()
            yield

    async def wait_until(self, predicate: Callable[[Engine], bool]) -> None:
        """Wait until ``predicate(engine)`` holds (re-checked after every event)."""
        self._waiters += 1
        try:
            while not predicate(self.engine):
                await self._changed.wait()
        finally:
            self._waiters -= 1

    async def _dispatch(self, command: Command) -> None:
        symbol = self.engine.symbol or "-"
        if isinstance(command, PlaceOrder):
            intent = command.intent
            await self._journal.record(
                "order",
                symbol=intent.symbol,
                order_link_id=intent.order_link_id,
                side=intent.side,
                type=intent.order_type,
                tif=intent.time_in_force,
                qty=intent.qty,
                price=intent.price,
                reduce_only=intent.reduce_only,
            )
            if intent.reduce_only:
                self._metrics.exits += 1
            else:
                self._metrics.entries += 1
            self.traded.add(intent.symbol)
            await send_control(self._orders, command, "orders")
        elif isinstance(command, CancelOrder | ProtectPosition):
            await send_control(self._orders, command, "orders")
        elif isinstance(command, RequestClosedPnl):
            await send_control(self._position_requests, command, "position requests")
        elif isinstance(command, PersistRiskState):
            await self._journal.record("risk_state", **risk_state_data(command.state))
        elif isinstance(command, Subscribe):
            await send_control(self._subscriptions, command.symbol, "subscriptions")
        elif isinstance(command, RequestPosition):
            await send_control(self._position_requests, command.symbol, "position requests")
        elif isinstance(command, Transition):
            logger.bind(symbol=symbol).info(
                "state {} -> {}: {}", command.before.value, command.after.value, command.cause
            )
            await self._journal.record(
                "transition",
                symbol=symbol,
                before=command.before,
                after=command.after,
                cause=command.cause,
            )
        elif isinstance(command, Log):
            logger.bind(symbol=symbol).log(command.level.upper(), command.message)
        elif isinstance(command, Alert):
            logger.bind(symbol=symbol).warning("ALERT: {}", command.message)
            await self._journal.record("alert", symbol=symbol, message=command.message)

    async def _market_loop(self, market: MarketReceive) -> None:
        latency = self._metrics.tick_to_decision
        async for received_at, message in market:
            await self._feed_market(message)
            latency.add(self._now() - received_at)

    async def _feed_market(self, event: Event) -> None:
        """``feed`` for market data, minus its lock checkpoint when the lock is free.

        The receive from the feed was this loop's checkpoint; a second one per message
        (``async with lock``) measured as 5x the engine's own time per book update.
        Handling while the lock is free, and taking it without yielding for the
        dispatch, keeps "handle + dispatch" whole exactly as ``feed`` does.
        """
        lock = self._lock
        if lock.locked() or self._backlog:
            await self.feed(event)
            return
        # No await between the check and handle(): nothing else can take the lock, so
        # it is taken only when there are commands to carry out (most updates have none).
        try:
            commands = self.engine.handle(event, self._clock_ms())
        except EngineError as exc:
            logger.error("engine refused {}: {}", type(event).__name__, exc)
            return
        if commands:
            lock.acquire_nowait()
            try:
                for command in commands:
                    await self._dispatch(command)
            finally:
                lock.release()
        self._notify_changed()

    def _market_now(self, received_at: float, message: MarketMessage) -> bool:
        """Handle a market message in the sender's task if nothing may come before it.

        Refused (False) while the lock is held or a backlog waits, and while a control
        event is on its way (the control loop is not asleep in its receive): it was sent
        first, so it is handled first. The feed asks only while the market loop waits
        with nothing pending. Commands go to the backlog, for the flush task.

        Asleep: trio clears a task's ``custom_sleep_data`` whenever it reschedules it (a
        send handing it an event wakes it so) and the sleep it is in is the only thing
        that sets it. Outside the lock the control loop awaits nothing but its receive
        (and the lock's own acquisition, which reschedules it or finds the lock held),
        so a value there means it sleeps on an empty channel. Why not the channel's
        ``statistics()``: it builds a seven-field object on every message, measured as
        about a tenth of a steady-rate frame's cold-cache cost.
        """
        if self._lock.locked() or self._backlog:
            return False
        control = self._control_task
        if control is None or control.custom_sleep_data is None:
            return False
        try:
            commands = self.engine.handle(message, self._clock_ms())
        except EngineError as exc:
            logger.error("engine refused {}: {}", type(message).__name__, exc)
            return True
        if commands:
            self._backlog.extend(commands)
            self._backlog_at = received_at
            self._backlog_lot.unpark()
            return True
        # kept as is, counted in on the timer's turn (``LatencyStats.record``)
        self._metrics.tick_to_decision.record(self._now() - received_at)
        if self._waiters:  # ``_notify_changed``, without a call per message
            self._notify_changed()
        return True

    async def _flush_backlog(self) -> None:
        """Carry out the backlog's commands in order (the caller holds the lock); its
        message's decision time counts once they have left, as for any other message."""
        backlog = self._backlog
        if not backlog:
            return
        while backlog:
            # taken off once carried out: a caller cancelled on the way (a deadline on
            # ``feed``, a full channel) leaves this command and the rest to the next
            # holder, as it would its own. (A PlaceOrder cancelled between its journal
            # line and its send is journaled again, and sent once.)
            await self._dispatch(backlog[0])
            del backlog[0]
        self._metrics.tick_to_decision.add(self._now() - self._backlog_at)
        self._notify_changed()

    async def _flush_loop(self) -> None:
        while True:
            if not self._backlog:
                await self._backlog_lot.park()
            async with self._lock:
                await self._flush_backlog()

    def _notify_changed(self) -> None:
        """Wake the ``wait_until`` callers (with none waiting, no new event is made)."""
        if self._waiters:
            self._changed.set()
            self._changed = trio.Event()

    async def _control_loop(self, control: trio.MemoryReceiveChannel[Event]) -> None:
        self._control_task = trio.lowlevel.current_task()
        try:
            async for event in control:
                await self.feed(event)
        finally:
            self._control_task = None

    async def _timer(self, tick_interval_s: float) -> None:
        while True:
            await trio.sleep(tick_interval_s)
            await self.feed(Tick())
            self._metrics.tick_to_decision.fold()  # what the reader's task recorded
            if self._heartbeat is not None:  # a hung loop stops the watchdog pings
                self._heartbeat()

    async def run(
        self,
        market: MarketReceive,
        control: trio.MemoryReceiveChannel[Event],
        *,
        tick_interval_s: float = 0.25,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled (the bot's shutdown sequence ends it)."""
        direct = isinstance(market, MarketReceiver)
        self._now = trio.lowlevel.current_clock().current_time
        if direct:
            market.deliver_to(self._market_now)
        try:
            async with market, control, trio.open_nursery() as nursery:
                nursery.start_soon(self._market_loop, market)
                nursery.start_soon(self._control_loop, control)
                nursery.start_soon(self._timer, tick_interval_s)
                nursery.start_soon(self._flush_loop)
                task_status.started()
        finally:
            if direct:
                market.deliver_to(None)
