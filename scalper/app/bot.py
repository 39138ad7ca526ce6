"""The bot: one nursery tree, its channels, and the shutdown sequence.

::

    run_bot / run_guarded            root: owns the journal and the crash sweep
    ├── journal          lossless channel -> SQLite in a worker thread
    └── trading          cancelled as a whole at the end of a graceful stop
        ├── status           status panel / summary lines
        ├── remote           notice watcher, HTTP server (dashboard, /metrics, /api),
        │                    Telegram: the control core's front ends (frontends.py)
        ├── private stream   order pushes -> execution's OrderWatch; reconnect -> Resync
        ├── execution        PlaceOrder / CancelOrder -> outcomes (control channel)
        ├── reconcile        position + open orders every interval and on request
        ├── strategy         the Engine: market + control channels in, commands out
        ├── market data      public stream -> book -> try-send to the strategy
        └── scanner          tickers -> SymbolSelected (control channel)

Channels: market data -> strategy is the only lossy one (try-send, counted drops).
Control traffic is awaited and sized so that a full channel means a bug.

Every task is started with ``nursery.start`` and reports ready only once it is
connected or subscribed, so the start-up order below is real: nothing trades before
the private stream is live, the exchange's positions have been swept, and the engine
has been told to reconcile before its first entry.

The channels and components are built once into ``app.wiring.Wiring``; how trading
ends (the graceful stop, and the crash sweep of ``run_guarded`` for whatever else ends
the trading tree) is ``app.stopping``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import attrs
import httpx
import trio
from loguru import logger

from ..bybit.rest import BybitRest
from ..config import Settings, engine_config
from ..core.model import Instrument, Resync
from ..core.strategy import Engine
from .account import HedgeModeError, adopt_positions, refuse_hedge_mode
from .execution import run_execution
from .frontends import Frontends
from .journal import Journal, run_journal
from .market_data import run_market_data
from .metrics import Metrics
from .private import run_private
from .prom import HttpProbe
from .reconcile import LeftoverCloser, run_reconcile
from .risk_state import read_risk_state
from .shutdown import ShutdownRequest
from .status import panel_view, run_status
from .stopping import (
    FINAL_SWEEP_TIMEOUT_S,
    JOURNAL_DRAIN_S,
    JournalWriter,
    graceful_stop,
    run_guarded,
    sweep_our_orders,
)
from .strategy import StrategyRunner
from .wiring import BotOptions, Connected, PnlTracker, Wiring, credentials, wire

__all__ = [
    "FINAL_SWEEP_TIMEOUT_S",
    "JOURNAL_DRAIN_S",
    "BotHandle",
    "BotOptions",
    "HedgeModeError",
    "JournalWriter",
    "PnlTracker",
    "engine_config",
    "run_bot",
    "run_guarded",
]


@attrs.frozen(kw_only=True)
class BotHandle:
    """What a running bot exposes to its caller (tests, the status panel): read-only use."""

    engine: Engine
    metrics: Metrics
    runner: StrategyRunner
    rest: BybitRest
    session_tag: str
    #: the control core and its front ends (HTTP server, Telegram)
    frontends: Frontends | None = None


def _describe(engine: Engine) -> Callable[[], str]:
    def describe() -> str:
        pos = engine.position
        held = f"{pos.side.value} {pos.size} @ {pos.entry_price}" if pos else "flat"
        paused = " (paused)" if engine.paused else ""  # operator pause (app/remote.py)
        return f"{engine.state.value}{paused} {engine.symbol or '-'} {held}"

    return describe


async def run_bot(
    settings: Settings,
    options: BotOptions,
    shutdown: ShutdownRequest,
    *,
    task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED,
) -> bool:
    """Run the bot until ``shutdown`` is requested (or ``duration_s`` passes), then stop
    gracefully: no new entries, orders cancelled, position closed if configured,
    journal flushed. ``started()`` hands the caller a ``BotHandle`` once trading runs.

    Returns True when the stop left nothing of ours working on the exchange (and no
    position, when ``risk.flatten_on_exit``); False means a human should look.
    """
    timeout = httpx.Timeout(options.http_timeout_s, connect=min(5.0, options.http_timeout_s))
    probe = HttpProbe()  # order round-trip and rate-limit headroom, for /metrics
    async with httpx.AsyncClient(
        base_url=settings.exchange.rest_url,
        timeout=timeout,
        transport=options.http_transport,
        event_hooks=probe.event_hooks(),
    ) as http:
        rest = BybitRest(
            http,
            credentials(settings.exchange),
            recv_window_ms=settings.exchange.recv_window_ms,
        )
        await rest.sync_clock()
        instruments: dict[str, Instrument] = {i.symbol: i for i in await rest.instruments()}
        # before anything else (no journal, no sweep): one line and exit 2
        await refuse_hedge_mode(rest, instruments)
        connected = Connected(
            settings=settings,
            options=options,
            rest=rest,
            instruments=instruments,
            shutdown=shutdown,
            # read before the writer opens the file: the newest latch of an earlier run
            restored=read_risk_state(settings.journal.path),
            probe=probe,
        )
        prefix = settings.strategy.link_id_prefix

        return await run_guarded(
            settings.journal.path,
            rest.now_ms,
            partial(_trade, connected, task_status=task_status),
            sweep=partial(sweep_our_orders, rest, prefix, "crash"),
            writer=options.journal_writer or run_journal,
        )


async def _trade(
    connected: Connected, journal: Journal, *, task_status: trio.TaskStatus[BotHandle]
) -> bool:
    """Trade until the shutdown: wire, start the tasks in order, then stop gracefully."""
    wiring = await wire(connected, journal)
    options, rest, shutdown = connected.options, connected.rest, connected.shutdown
    engine, metrics, frontends, notifier = (
        wiring.engine,
        wiring.metrics,
        wiring.frontends,
        wiring.notifier,
    )
    execution = wiring.execution
    # a stop waits for a working order to reach its end: confirmation, cancel, read
    stop_timeout_s = execution.confirm_timeout_s + execution.cancel_timeout_s + 2.0
    try:
        async with trio.open_nursery() as trading:
            # A shutdown requested while starting (a stream that cannot connect, say)
            # abandons the start-up instead of waiting for it: nothing is placed yet.
            with trio.CancelScope() as starting:
                trading.start_soon(_abort_start_on_shutdown, shutdown, starting)
                await _start_tasks(trading, wiring, options)
            if starting.cancelled_caught:
                logger.warning("shutdown requested during start-up: {}", shutdown.reason)
                trading.cancel_scope.cancel()
                return True
            if options.duration_s is not None:
                trading.start_soon(_stop_after, shutdown, options.duration_s)
            task_status.started(
                BotHandle(
                    engine=engine,
                    metrics=metrics,
                    runner=wiring.runner,
                    rest=rest,
                    session_tag=wiring.session_tag,
                    frontends=frontends,
                )
            )
            frontends.announce_start()
            notifier.ready(_describe(engine)())  # systemd READY=1
            await shutdown.requested.wait()
            notifier.stopping(f"stopping: {shutdown.reason}")  # systemd STOPPING=1
            logger.warning("shutting down: {}", shutdown.reason)
            clean = await graceful_stop(
                wiring.runner, rest, wiring.prefix, wiring.inflight, stop_timeout_s
            )
            await journal.record("stop", reason=shutdown.reason, summary=metrics.summary())
            logger.info("shutdown complete: state {} | {}", engine.state.value, metrics.summary())
            await frontends.announce_stop(shutdown.reason, clean)
            trading.cancel_scope.cancel()
            return clean
    except BaseException:
        # a crash or an outside cancel: the notice goes out before the tree ends
        frontends.announce_crash()
        raise


async def _start_tasks(trading: trio.Nursery, w: Wiring, options: BotOptions) -> None:
    """Start the trading tree's tasks in order, each ready before the next starts."""
    engine, metrics, rest, channels = w.engine, w.metrics, w.rest, w.channels
    settings = w.settings
    exchange = settings.exchange
    await trading.start(
        partial(
            run_status,
            metrics=metrics,
            describe=_describe(engine),
            console=options.console,
            view=lambda rate: panel_view(engine, w.facts, metrics, rest.now_ms(), rate),
            notifier=w.notifier,
            facts=w.facts,
        )
    )
    await w.frontends.start(trading)  # watcher, HTTP server, Telegram
    await trading.start(
        partial(
            run_private,
            url=exchange.ws_private_url,
            credentials=credentials(exchange),
            watch=w.watch,
            on_reconnect=w.resync,
            metrics=metrics,
            policy=options.ws_policy,
            clock_ms=rest.now_ms,
        )
    )
    await trading.start(
        partial(
            run_execution,
            api=rest,
            watch=w.watch,
            commands=channels.orders_receive,
            report=w.report_outcome,
            on_fill=w.on_order_end,
            config=w.execution,
            metrics=metrics,
            inflight=w.inflight,
        )
    )
    await trading.start(
        partial(
            run_reconcile,
            api=rest,
            requests=channels.requests_receive,
            report=w.report,
            interval_s=settings.reconcile.interval_s,
            epoch=w.epoch,
            current=lambda: engine.symbol,
            traded=lambda: w.runner.traded,
            leftovers=LeftoverCloser(rest, w.instruments, w.prefix, w.session_tag),
            clock_ms=rest.now_ms,
        )
    )
    await trading.start(
        partial(
            w.runner.run,
            market=w.feed.receiver,
            control=channels.control_receive,
            # the timer turns at least as often as the watchdog pings
            tick_interval_s=min(
                options.tick_interval_s,
                w.notifier.watchdog_interval_s or options.tick_interval_s,
            ),
        )
    )
    await trading.start(
        partial(
            run_market_data,
            url=exchange.ws_public_url,
            subscriptions=channels.subs_receive,
            feed=w.feed,
            instruments=w.instruments,
            on_reconnect=w.market_resync,
            metrics=metrics,
            policy=options.ws_policy,
            on_gap=w.market_gap,
        )
    )
    await w.report(Resync(reason="start-up"))
    await adopt_positions(rest, w.prefix, w.scanner, w.scanner_config, w.report)
    if w.scanner.current is not None:  # adopted: watched like a traded symbol
        w.runner.traded.add(w.scanner.current)
    await trading.start(
        partial(w.scanner.run, report=w.report, interval_s=settings.scanner.interval_s)
    )


async def _abort_start_on_shutdown(shutdown: ShutdownRequest, starting: trio.CancelScope) -> None:
    await shutdown.requested.wait()
    starting.cancel()  # a no-op once start-up is over


async def _stop_after(shutdown: ShutdownRequest, duration_s: float) -> None:
    await trio.sleep(duration_s)
    shutdown.request(f"--duration {duration_s:g} s elapsed")
