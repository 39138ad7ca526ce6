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

from collections.abc import Callable
from decimal import Decimal
from functools import partial

import attrs
import httpx
import trio
from loguru import logger

from ..bybit.errors import BybitError
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
from ..core.strategy import Engine, EngineConfig, make_session_tag
from ..report import Fill as ReportFill
from ..report import build_report
from .execution import ExecutionConfig, OrderWatch, run_execution
from .feed import MarketFeed, MarketMessage
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

#: market updates waiting for the strategy; small on purpose: old books are worthless
MARKET_CHANNEL = 64
#: control events (order outcomes, positions, switches); a full one is a bug
CONTROL_CHANNEL = 256
JOURNAL_CHANNEL = 1024
#: the graceful stop waits this long for the engine to be flat with no order working
FLATTEN_TIMEOUT_S = 8.0
#: and this long for the final sweep of our working orders
FINAL_SWEEP_TIMEOUT_S = 3.0


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
) -> None:
    """Run the bot until ``shutdown`` is requested (or ``duration_s`` passes), then stop
    gracefully: no new entries, orders cancelled, position closed if configured,
    journal flushed. ``started()`` hands the caller a ``BotHandle`` once trading runs.
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
        async with trio.open_nursery() as root:
            await root.start(run_journal, settings.journal.path, journal_receive)
            try:
                await _trade(settings, options, rest, journal, shutdown, task_status)
            finally:
                await journal.aclose()


async def _trade(
    settings: Settings,
    options: BotOptions,
    rest: BybitRest,
    journal: Journal,
    shutdown: ShutdownRequest,
    task_status: trio.TaskStatus[BotHandle],
) -> None:
    metrics = Metrics()
    session_tag = make_session_tag(rest.now_ms())
    engine = Engine(engine_config(settings, session_tag))
    prefix = settings.strategy.link_id_prefix
    await journal.record("start", mode=settings.exchange.mode, session=session_tag)
    logger.info("session {}: orderLinkIds {}-{}-*", session_tag, prefix, session_tag)

    market_send, market_receive = trio.open_memory_channel[tuple[float, MarketMessage]](
        MARKET_CHANNEL
    )
    control_send, control_receive = trio.open_memory_channel[Event](CONTROL_CHANNEL)
    orders_send, orders_receive = trio.open_memory_channel[PlaceOrder | CancelOrder](64)
    subs_send, subs_receive = trio.open_memory_channel[str](16)
    requests_send, requests_receive = trio.open_memory_channel[str](1)
    pnl = PnlTracker(metrics)

    async def report(event: Event) -> None:
        await control_send.send(event)

    epoch = OrderEpoch()

    async def report_outcome(event: Event) -> None:
        # counted before it is queued: a position read overlapping it is read again
        epoch.bump()
        await control_send.send(event)

    async def resync(reason: str) -> None:
        metrics.reconnects += 1
        await control_send.send(Resync(reason=reason))

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
    scanner = Scanner(
        rest,
        ScannerConfig(
            min_turnover=settings.scanner.min_turnover,
            switch_ratio=settings.scanner.switch_ratio,
            exclude=settings.scanner.exclude,
        ),
        instruments,
    )
    endpoints = options.endpoints

    async with trio.open_nursery() as trading:
        await trading.start(run_status, metrics, _describe(engine), options.console)
        if settings.metrics.port:
            await trading.start(
                partial(serve_metrics, metrics, settings.metrics.port, host=settings.metrics.host)
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
            run_execution,
            rest,
            watch,
            orders_receive,
            report_outcome,
            on_order_end,
            execution,
            metrics,
        )
        await trading.start(
            partial(run_reconcile, epoch=epoch),
            rest,
            requests_receive,
            report,
            settings.reconcile.interval_s,
        )
        await trading.start(
            partial(runner.run, tick_interval_s=options.tick_interval_s),
            market_receive,
            control_receive,
        )
        feed = MarketFeed(market_send, metrics)
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
        for position in await startup_sweep(rest, prefix):
            if position.symbol in instruments and scanner.current is None:
                scanner.current = position.symbol
                await report(
                    SymbolSelected(symbol=position.symbol, instrument=instruments[position.symbol])
                )
                await report(position)
        await trading.start(scanner.run, report, settings.scanner.interval_s)
        if options.duration_s is not None:
            trading.start_soon(_stop_after, shutdown, options.duration_s)
        task_status.started(
            BotHandle(
                engine=engine, metrics=metrics, runner=runner, rest=rest, session_tag=session_tag
            )
        )
        await shutdown.requested.wait()
        logger.warning("shutting down: {}", shutdown.reason)
        await _graceful_stop(runner, rest, prefix, metrics)
        await journal.record("stop", reason=shutdown.reason, summary=metrics.summary())
        trading.cancel_scope.cancel()


class PnlTracker:
    """Net realised PnL of this run, from the fills (shown by the status panel)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._fills: list[ReportFill] = []

    def add(self, fill: ReportFill) -> None:
        """Record one fill and refresh ``metrics.realised_pnl`` (net of fees)."""
        self._fills.append(fill)
        self._metrics.realised_pnl = f"{build_report(self._fills).net:.4f}"


async def _stop_after(shutdown: ShutdownRequest, duration_s: float) -> None:
    await trio.sleep(duration_s)
    shutdown.request(f"--duration {duration_s:g} s elapsed")


async def _graceful_stop(
    runner: StrategyRunner, rest: BybitRest, prefix: str, metrics: Metrics
) -> None:
    """Halt the engine (cancel, maybe flatten), wait for it to settle, sweep our orders."""
    engine = runner.engine
    await runner.feed(Halt(reason="shutdown"))
    with trio.move_on_after(FLATTEN_TIMEOUT_S) as waited:
        await runner.wait_until(_settled)
    if waited.cancelled_caught:
        logger.error(
            "shutdown: engine not settled after {} s (state {}, position {})",
            FLATTEN_TIMEOUT_S,
            engine.state.value,
            engine.position,
        )
    with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S), trio.CancelScope(shield=True):
        try:
            for order in await rest.open_orders(None):
                if order.order_link_id.startswith(f"{prefix}-"):
                    await rest.cancel_order(order.symbol, order.order_link_id)
                    logger.bind(symbol=order.symbol, order_link_id=order.order_link_id).warning(
                        "shutdown: cancelled a working order"
                    )
        except BybitError as exc:
            logger.error("shutdown: final order sweep failed: {}", exc)
    logger.info("shutdown complete: state {} | {}", engine.state.value, metrics.summary())


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
