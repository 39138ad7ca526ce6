"""The bot: one nursery tree, its channels, and the shutdown sequence.

::

    run_bot                          root: owns the journal and the shutdown sequence
    ├── journal          lossless channel -> SQLite in a worker thread
    └── trading          cancelled as a whole at the end of a graceful stop
        ├── status           status panel / summary lines
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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial

import attrs
import httpx
import trio
from loguru import logger

from ..bybit.errors import BybitError, OrderAlreadyFinal, OrderNotFound
from ..bybit.rest import BybitRest, Credentials
from ..bybit.ws import WsPolicy
from ..config import Settings
from ..core.model import (
    CancelOrder,
    Event,
    Halt,
    Instrument,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    PlaceOrder,
    Resync,
    SymbolSelected,
)
from ..core.risk import RiskLimits
from ..core.scanner import ScannerConfig
from ..core.strategy import Engine, EngineConfig, is_own_order_link_id, make_session_tag
from ..report import Fill as ReportFill
from ..report import Ledger
from .control import send_control
from .execution import ExecutionConfig, InFlight, OrderWatch, run_execution
from .feed import MarketFeed
from .journal import Journal, JournalRecord, run_journal
from .market_data import run_market_data
from .metrics import Metrics
from .metrics_server import serve_metrics
from .private import run_private
from .reconcile import OrderEpoch, run_reconcile, startup_sweep
from .scanner import Scanner
from .shutdown import ShutdownRequest
from .status import StatusConsole, run_status
from .strategy import StrategyRunner

__all__ = ["BotHandle", "BotOptions", "Endpoints", "PnlTracker", "engine_config", "run_bot"]

#: control events (order outcomes, positions, switches); a full one is a bug
CONTROL_CHANNEL = 256
JOURNAL_CHANNEL = 1024
#: the final sweep of our working orders (list, cancel, list again) gets this long
FINAL_SWEEP_TIMEOUT_S = 5.0
#: what is queued for the journal gets this long to reach the disk at exit
JOURNAL_DRAIN_S = 2.0


@attrs.frozen(kw_only=True)
class BotHandle:
    """What a running bot exposes to its caller (tests, the status panel): read-only use."""

    engine: Engine
    metrics: Metrics
    runner: StrategyRunner
    rest: BybitRest
    session_tag: str


@attrs.frozen(kw_only=True)
class Endpoints:
    """Where the exchange is."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str


def engine_config(settings: Settings, session_tag: str) -> EngineConfig:
    """Translate settings (operator units: seconds, percent) into the engine's."""
    st, risk = settings.strategy, settings.risk
    return EngineConfig(
        session_tag=session_tag,
        window=st.window,
        min_ticks=st.min_ticks,
        momentum_threshold=st.momentum_threshold,
        max_spread_bps=st.max_spread_bps,
        position_usd=st.position_usd,
        stop_loss_pct=st.stop_loss_pct,
        take_profit_pct=st.take_profit_pct,
        stale_ms=st.stale_ms,
        liquid_spread_bps=st.liquid_spread_bps,
        liquid_min_size=st.liquid_min_size,
        max_hold_ms=int(st.max_hold_s * 1000) or None,
        link_id_prefix=st.link_id_prefix,
        flatten_on_halt=risk.flatten_on_exit,
        risk=RiskLimits(
            max_position_usd=risk.max_position_usd,
            max_daily_loss_usd=risk.max_daily_loss_usd,
            max_orders_per_minute=risk.max_orders_per_minute,
            cooldown_ms=int(st.cooldown_s * 1000),
        ),
    )


def _describe(engine: Engine) -> Callable[[], str]:
    def describe() -> str:
        pos = engine.position
        held = f"{pos.side.value} {pos.size} @ {pos.entry_price}" if pos else "flat"
        return f"{engine.state.value} {engine.symbol or '-'} {held}"

    return describe


@attrs.frozen(kw_only=True)
class BotOptions:
    """How one run is wired: everything that is not a setting."""

    endpoints: Endpoints
    api_key: str = attrs.field(repr=False)
    api_secret: str = attrs.field(repr=False)
    #: stop gracefully after this long (``--duration``)
    duration_s: float | None = None
    console: StatusConsole | None = None
    #: WebSocket timing (tests use short heartbeats); None: Bybit's recommendations
    ws_policy: WsPolicy | None = None
    #: how often the engine's time rules run on a silent market
    tick_interval_s: float = 0.25
    http_transport: httpx.AsyncBaseTransport | None = None
    #: how long one REST request may take before its outcome counts as unknown (tests
    #: of the simulator's ``timeout`` fault shorten it)
    http_timeout_s: float = 10.0


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
    async with httpx.AsyncClient(
        base_url=options.endpoints.rest_url, timeout=timeout, transport=options.http_transport
    ) as http:
        rest = BybitRest(
            http,
            Credentials(api_key=options.api_key, api_secret=options.api_secret),
            recv_window_ms=settings.exchange.recv_window_ms,
        )
        await rest.sync_clock()
        journal_send, journal_receive = trio.open_memory_channel[JournalRecord](JOURNAL_CHANNEL)
        journal = Journal(journal_send, clock_ms=rest.now_ms)
        writer_done = trio.Event()

        async def writer(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await run_journal(settings.journal.path, journal_receive, task_status=task_status)
            finally:
                writer_done.set()

        async with trio.open_nursery() as root:
            await root.start(writer)
            try:
                return await _trade(settings, options, rest, journal, shutdown, task_status)
            finally:
                # Even after a crash, what is queued reaches the disk: it is what the
                # operator reads to learn what happened. Shielded, but bounded.
                with trio.move_on_after(JOURNAL_DRAIN_S) as drain:
                    drain.shield = True
                    await journal.aclose()
                    await writer_done.wait()


async def _trade(
    settings: Settings,
    options: BotOptions,
    rest: BybitRest,
    journal: Journal,
    shutdown: ShutdownRequest,
    task_status: trio.TaskStatus[BotHandle],
) -> bool:
    metrics = Metrics()
    session_tag = make_session_tag(rest.now_ms())
    engine = Engine(engine_config(settings, session_tag))
    prefix = settings.strategy.link_id_prefix
    await journal.record("start", mode=settings.exchange.mode, session=session_tag)
    logger.info("session {}: orderLinkIds {}-{}-*", session_tag, prefix, session_tag)

    feed = MarketFeed(metrics)
    control_send, control_receive = trio.open_memory_channel[Event](CONTROL_CHANNEL)
    orders_send, orders_receive = trio.open_memory_channel[PlaceOrder | CancelOrder](64)
    subs_send, subs_receive = trio.open_memory_channel[str](16)
    requests_send, requests_receive = trio.open_memory_channel[str](64)
    pnl = PnlTracker(metrics)
    epoch = OrderEpoch()
    inflight = InFlight()

    async def report(event: Event) -> None:
        await send_control(control_send, event, "control")

    async def report_outcome(event: Event) -> None:
        # counted before it is queued: a position read overlapping it is read again
        epoch.bump()
        await send_control(control_send, event, "control")

    async def resync(reason: str) -> None:
        metrics.reconnects += 1
        await send_control(control_send, Resync(reason=reason), "control")

    orders_ended = 0

    async def on_order_end(intent: OrderIntent, event: Event) -> None:
        nonlocal orders_ended
        # Orders are placed one at a time, each with exactly one end: every create sent
        # beyond one per ended order was a retry (10006, 5xx, a lost reply).
        orders_ended += 1
        metrics.order_retries = rest.create_sends - orders_ended
        fill = await _journal_outcome(journal, rest, intent, event)
        if fill is not None:
            pnl.add(fill)

    instruments: dict[str, Instrument] = {i.symbol: i for i in await rest.instruments()}
    runner = StrategyRunner(
        engine,
        clock_ms=rest.now_ms,
        orders=orders_send,
        subscriptions=subs_send,
        position_requests=requests_send,
        journal=journal,
        metrics=metrics,
    )
    watch = OrderWatch()
    execution = ExecutionConfig(
        poll_interval_s=settings.execution.poll_interval_ms / 1000,
        confirm_timeout_s=settings.execution.confirm_timeout_s,
    )
    scanner_config = ScannerConfig(
        min_turnover=settings.scanner.min_turnover,
        switch_ratio=settings.scanner.switch_ratio,
        exclude=settings.scanner.exclude,
    )
    scanner = Scanner(rest, scanner_config, instruments)
    endpoints = options.endpoints
    # a stop waits for a working order to reach its end: confirmation, cancel, read
    stop_timeout_s = execution.confirm_timeout_s + execution.cancel_timeout_s + 2.0

    try:
        async with trio.open_nursery() as trading:
            # A shutdown requested while starting (a stream that cannot connect, say)
            # abandons the start-up instead of waiting for it: nothing is placed yet.
            with trio.CancelScope() as starting:
                trading.start_soon(_abort_start_on_shutdown, shutdown, starting)
                await trading.start(run_status, metrics, _describe(engine), options.console)
                if settings.metrics.port:
                    await trading.start(
                        partial(
                            serve_metrics,
                            metrics,
                            settings.metrics.port,
                            host=settings.metrics.host,
                        )
                    )
                await trading.start(
                    partial(run_private, policy=options.ws_policy, clock_ms=rest.now_ms),
                    endpoints.ws_private_url,
                    options.api_key,
                    options.api_secret,
                    watch,
                    resync,
                    metrics,
                )
                await trading.start(
                    partial(run_execution, inflight=inflight),
                    rest,
                    watch,
                    orders_receive,
                    report_outcome,
                    on_order_end,
                    execution,
                    metrics,
                )
                await trading.start(
                    partial(run_reconcile, epoch=epoch, current=lambda: engine.symbol),
                    rest,
                    requests_receive,
                    report,
                    settings.reconcile.interval_s,
                )
                await trading.start(
                    partial(runner.run, tick_interval_s=options.tick_interval_s),
                    feed.receiver,
                    control_receive,
                )
                await trading.start(
                    partial(run_market_data, policy=options.ws_policy),
                    endpoints.ws_public_url,
                    subs_receive,
                    feed,
                    instruments,
                    resync,
                    metrics,
                )
                await report(Resync(reason="start-up"))
                await _adopt_positions(rest, prefix, scanner, scanner_config, report)
                await trading.start(scanner.run, report, settings.scanner.interval_s)
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
                    runner=runner,
                    rest=rest,
                    session_tag=session_tag,
                )
            )
            await shutdown.requested.wait()
            logger.warning("shutting down: {}", shutdown.reason)
            clean = await _graceful_stop(runner, rest, prefix, inflight, stop_timeout_s)
            await journal.record("stop", reason=shutdown.reason, summary=metrics.summary())
            logger.info("shutdown complete: state {} | {}", engine.state.value, metrics.summary())
            trading.cancel_scope.cancel()
            return clean
    except Exception:
        # A task died and took the tree down: before the error propagates, leave
        # nothing of ours working on the exchange (shielded, bounded).
        with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S) as sweep:
            sweep.shield = True
            logger.error("a task failed: cancelling our working orders before exiting")
            await _sweep_our_orders(rest, prefix, "crash")
        raise


async def _abort_start_on_shutdown(shutdown: ShutdownRequest, starting: trio.CancelScope) -> None:
    await shutdown.requested.wait()
    starting.cancel()  # a no-op once start-up is over


async def _adopt_positions(
    rest: BybitRest,
    prefix: str,
    scanner: Scanner,
    config: ScannerConfig,
    report: Callable[[Event], Awaitable[None]],
) -> None:
    """Start-up: cancel our stray orders; adopt one open position the bot may trade.

    The engine trades one symbol, so at most one position is adopted, and only on a
    symbol the scanner could have chosen (an excluded symbol's position, BTC say, is
    most likely a human's). Any other open position is left alone, loudly.
    """
    instruments = scanner.instruments
    for position in await startup_sweep(rest, prefix):
        tradeable = position.symbol in instruments and position.symbol not in config.exclude
        if tradeable and scanner.current is None:
            scanner.current = position.symbol
            await report(
                SymbolSelected(symbol=position.symbol, instrument=instruments[position.symbol])
            )
            await report(position)
            continue
        why = "excluded from trading" if not tradeable else "another position was adopted"
        logger.bind(symbol=position.symbol).warning(
            "ALERT: open position on {} is not managed by this bot ({}): it is left as is",
            position.symbol,
            why,
        )


class PnlTracker:
    """Net realised PnL of this run, from the fills (shown by the status panel)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._ledger = Ledger()

    def add(self, fill: ReportFill) -> None:
        """Record one fill and refresh ``metrics.realised_pnl`` (net of fees)."""
        self._ledger.add(fill)
        self._metrics.realised_pnl = f"{self._ledger.net:.4f}"


async def _stop_after(shutdown: ShutdownRequest, duration_s: float) -> None:
    await trio.sleep(duration_s)
    shutdown.request(f"--duration {duration_s:g} s elapsed")


async def _graceful_stop(
    runner: StrategyRunner, rest: BybitRest, prefix: str, inflight: InFlight, timeout_s: float
) -> bool:
    """Halt the engine (cancel, maybe flatten), let order operations finish, then sweep.

    Returns True when nothing of ours is left working (and, with flatten, no position).
    """
    engine = runner.engine
    await runner.feed(Halt(reason="shutdown"))
    with trio.move_on_after(timeout_s) as waited:
        await runner.wait_until(_settled)
        # an order operation cut in half could land after the sweep: let it end
        await inflight.wait_idle()
    clean = True
    if waited.cancelled_caught:
        clean = False
        logger.error(
            "shutdown: not settled after {} s (state {}, position {}, {} order operations)",
            timeout_s,
            engine.state.value,
            engine.position,
            inflight.count,
        )
    return await _sweep_our_orders(rest, prefix, "shutdown") and clean


async def _sweep_our_orders(rest: BybitRest, prefix: str, why: str) -> bool:
    """Cancel every working order carrying our prefix, then check; False if any remain."""
    with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S):
        try:
            for order in await rest.open_orders(None):
                if not is_own_order_link_id(order.order_link_id, prefix):
                    continue
                log = logger.bind(symbol=order.symbol, order_link_id=order.order_link_id)
                try:
                    await rest.cancel_order(order.symbol, order.order_link_id)
                    log.warning("{}: cancelled a working order", why)
                except (OrderNotFound, OrderAlreadyFinal):
                    log.info("{}: order ended by itself", why)
                except BybitError as exc:
                    log.error("{}: cancel failed: {}", why, exc)  # noqa: TRY400 (no traceback)
            left = [
                o.order_link_id
                for o in await rest.open_orders(None)
                if is_own_order_link_id(o.order_link_id, prefix)
            ]
        except BybitError as exc:
            logger.error("{}: order sweep failed: {}", why, exc)
            return False
        if left:
            logger.error("{}: orders of ours still working: {}", why, ", ".join(left))
        return not left
    logger.error("{}: order sweep did not finish in {} s", why, FINAL_SWEEP_TIMEOUT_S)
    return False


def _settled(engine: Engine) -> bool:
    """No order working, and flat unless the configuration keeps the position."""
    flat_enough = engine.position is None or not engine.config.flatten_on_halt
    return engine.working_order_link_id is None and flat_enough


async def _journal_outcome(
    journal: Journal, rest: BybitRest, intent: OrderIntent, event: Event
) -> ReportFill | None:
    """Journal an order's end; a fill (full or partial) also becomes a ``fill`` record."""
    price: Decimal | None
    if isinstance(event, OrderFilled):
        filled, price, reason = event.filled_qty, event.avg_price, "filled"
    elif isinstance(event, OrderFailed):
        filled, price, reason = event.filled_qty, event.avg_price, event.reason
    else:
        return None
    await journal.record(
        "order_end",
        symbol=intent.symbol,
        order_link_id=intent.order_link_id,
        outcome=reason,
        filled_qty=filled,
        avg_price=price,
    )
    if filled > 0 and price is not None:
        fee = Decimal(0)
        try:
            fills = await rest.executions(intent.symbol, order_link_id=intent.order_link_id)
            fee = sum((f.fee for f in fills), fee)
        except BybitError as exc:
            logger.bind(order_link_id=intent.order_link_id).warning("fee read failed: {}", exc)
        await journal.record(
            "fill",
            symbol=intent.symbol,
            order_link_id=intent.order_link_id,
            side=intent.side,
            qty=filled,
            price=price,
            fee=fee,
            reduce_only=intent.reduce_only,
        )
        return ReportFill(
            ts_ms=rest.now_ms(),
            symbol=intent.symbol,
            side=intent.side.value,
            qty=filled,
            price=price,
            fee=fee,
        )
    return None
