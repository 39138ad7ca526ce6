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

Whatever ends the trading tree other than the graceful stop (an exception in any task,
the journal writer included, or a cancellation from outside, such as a second Ctrl+C)
runs the crash sweep in ``run_guarded``: shielded and bounded, it cancels our working
orders and leaves the position and its exchange-side stop in place. (The journal writer
used to sit beside the trading tree: its failure reached ``_trade`` as ``Cancelled``,
which the sweep did not catch, so the bot exited with orders working.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Protocol, TypeVar

import attrs
import httpx
import trio
from loguru import logger

from ..bybit.errors import BybitError, OrderAlreadyFinal, OrderNotFound
from ..bybit.rest import BybitRest, Credentials
from ..bybit.ws import WsPolicy
from ..config import Settings, engine_config
from ..core.model import (
    Event,
    Halt,
    Instrument,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    PositionSnapshot,
    Resync,
    RiskState,
    SymbolSelected,
)
from ..core.scanner import ScannerConfig
from ..core.strategy import Engine, is_own_order_link_id, make_session_tag
from ..report import Fill as ReportFill
from ..report import Ledger, RoundTrip
from .control import send_control
from .execution import ExecutionConfig, InFlight, OrderWatch, run_execution
from .feed import MarketFeed
from .frontends import Frontends
from .journal import Journal, JournalFailed, JournalRecord, run_journal
from .market_data import run_market_data
from .metrics import Metrics
from .private import run_private
from .prom import HttpProbe
from .reconcile import LeftoverCloser, OrderEpoch, run_reconcile, startup_sweep
from .remote import Control
from .risk_state import lift_halt, read_risk_state
from .scanner import Scanner
from .sdnotify import Notifier  # vps (issue 12)
from .shutdown import ShutdownRequest
from .status import StatusConsole, StatusFacts, panel_view, run_status
from .strategy import OrderCommand, PositionRequest, StrategyRunner

__all__ = [
    "BotHandle",
    "BotOptions",
    "Endpoints",
    "HedgeModeError",
    "JournalWriter",
    "PnlTracker",
    "engine_config",
    "run_bot",
    "run_guarded",
]

T = TypeVar("T")


class JournalWriter(Protocol):
    """The journal writer task's signature (``run_journal``; tests swap in a failing one)."""

    async def __call__(
        self,
        path: str,
        receive: trio.MemoryReceiveChannel[JournalRecord],
        *,
        task_status: trio.TaskStatus[None] = ...,
    ) -> None: ...


class HedgeModeError(Exception):
    """The account is in hedge mode: the bot trades one-way positions only (exit 2)."""


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
    #: the control core and its front ends (HTTP server, Telegram)
    frontends: Frontends | None = None


@attrs.frozen(kw_only=True)
class Endpoints:
    """Where the exchange is."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str


def _describe(engine: Engine) -> Callable[[], str]:
    def describe() -> str:
        pos = engine.position
        held = f"{pos.side.value} {pos.size} @ {pos.entry_price}" if pos else "flat"
        paused = " (paused)" if engine.paused else ""  # operator pause (app/remote.py)
        return f"{engine.state.value}{paused} {engine.symbol or '-'} {held}"

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
    #: Telegram's transport (tests: a fake Bot API); None: the network
    telegram_transport: httpx.AsyncBaseTransport | None = None
    #: ``--reset-halt``: lift a daily-loss halt restored from the journal
    reset_halt: bool = False
    #: the journal writer task (tests: one that fails like a full disk)
    journal_writer: JournalWriter | None = None
    # --- vps (issue 12): systemd's notify socket (READY/WATCHDOG/STATUS/STOPPING);
    # None: no notifications
    notifier: Notifier | None = None


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
        base_url=options.endpoints.rest_url,
        timeout=timeout,
        transport=options.http_transport,
        event_hooks=probe.event_hooks(),
    ) as http:
        rest = BybitRest(
            http,
            Credentials(api_key=options.api_key, api_secret=options.api_secret),
            recv_window_ms=settings.exchange.recv_window_ms,
        )
        await rest.sync_clock()
        instruments: dict[str, Instrument] = {i.symbol: i for i in await rest.instruments()}
        # before anything else (no journal, no sweep): one line and exit 2
        await _refuse_hedge_mode(rest, instruments)
        # read before the writer opens the file: the newest latch of an earlier run
        restored = read_risk_state(settings.journal.path)
        prefix = settings.strategy.link_id_prefix

        async def trade(journal: Journal) -> bool:
            return await _trade(
                settings,
                options,
                rest,
                instruments,
                journal,
                shutdown,
                task_status,
                restored,
                probe=probe,
            )

        return await run_guarded(
            settings.journal.path,
            rest.now_ms,
            trade,
            sweep=partial(_sweep_our_orders, rest, prefix, "crash"),
            writer=options.journal_writer or run_journal,
        )


async def run_guarded(
    path: str,
    clock_ms: Callable[[], int],
    trade: Callable[[Journal], Awaitable[T]],
    *,
    sweep: Callable[[], Awaitable[bool]],
    writer: JournalWriter = run_journal,
) -> T:
    """Run ``trade`` beside the journal writer; sweep our orders if it ends abnormally.

    The sweep runs whatever ended ``trade`` short of a normal return: an exception in
    any of its tasks, a failure of the journal writer (which cancels ``trade`` from
    the root nursery: hence ``BaseException``, ``Cancelled`` included) or a
    cancellation from outside. It is shielded (it must run while everything around it
    is being cancelled) and bounded (``FINAL_SWEEP_TIMEOUT_S``). A writer failure
    comes out as ``JournalFailed``, naming the cause in one line.
    """
    journal_send, journal_receive = trio.open_memory_channel[JournalRecord](JOURNAL_CHANNEL)
    journal = Journal(journal_send, clock_ms=clock_ms)
    writer_done = trio.Event()

    async def write(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await writer(path, journal_receive, task_status=task_status)
        except Exception as exc:
            raise JournalFailed(f"journal writer failed: {_cause(exc)}") from exc
        finally:
            writer_done.set()

    async with trio.open_nursery() as root:
        await root.start(write)
        try:
            return await trade(journal)
        except BaseException as exc:
            # Everything of the trading tree has ended by now (its nursery is closed):
            # nothing places an order while the sweep runs.
            with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S) as sweeping:
                sweeping.shield = True
                logger.error(
                    "trading stopped abnormally ({}): cancelling our working orders; "
                    "the position and its exchange stop stay",
                    _cause(exc),
                )
                await sweep()
            raise
        finally:
            # Even after a crash, what is queued reaches the disk: it is what the
            # operator reads to learn what happened. Shielded, but bounded.
            with trio.move_on_after(JOURNAL_DRAIN_S) as drain:
                drain.shield = True
                await journal.aclose()
                await writer_done.wait()


def _cause(exc: BaseException) -> str:
    """One line naming what ended the trading tree."""
    if isinstance(exc, trio.Cancelled):
        return "cancelled (from outside, or by the journal writer's failure)"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_cause(e) for e in exc.exceptions))
    return f"{type(exc).__name__}: {exc}"


async def _trade(
    settings: Settings,
    options: BotOptions,
    rest: BybitRest,
    instruments: dict[str, Instrument],
    journal: Journal,
    shutdown: ShutdownRequest,
    task_status: trio.TaskStatus[BotHandle],
    restored: RiskState | None,
    *,
    probe: HttpProbe | None = None,
) -> bool:
    metrics = Metrics()
    session_tag = make_session_tag(rest.now_ms())
    prefix = settings.strategy.link_id_prefix
    await journal.record("start", mode=settings.exchange.mode, session=session_tag)
    logger.info("session {}: orderLinkIds {}-{}-*", session_tag, prefix, session_tag)
    if options.reset_halt:
        restored = await lift_halt(journal, restored, rest.now_ms())
    elif restored is not None and restored.halted:
        logger.warning(
            "ALERT: daily-loss halt restored from the journal ({}): no entries until the "
            "next UTC day or `scalper run --reset-halt`",
            restored.halt_reason,
        )
    engine = Engine(engine_config(settings, session_tag), restored=restored)

    feed = MarketFeed(metrics)
    control_send, control_receive = trio.open_memory_channel[Event](CONTROL_CHANNEL)
    orders_send, orders_receive = trio.open_memory_channel[OrderCommand](64)
    subs_send, subs_receive = trio.open_memory_channel[str](16)
    requests_send, requests_receive = trio.open_memory_channel[PositionRequest](64)
    # --- vps (issue 12): the panel's facts and systemd's notifications
    facts = StatusFacts(mode=settings.exchange.mode)
    notifier = options.notifier or Notifier(None)
    pnl = PnlTracker(metrics, facts)
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

    async def market_resync(reason: str) -> None:
        # a public-stream gap: also clear the engine's trade window (issue 9)
        metrics.reconnects += 1
        await send_control(control_send, Resync(reason=reason, market_gap=True), "control")

    async def market_gap(reason: str) -> None:
        await send_control(control_send, Resync(reason=reason, market_gap=True), "control")

    orders_ended = 0

    async def on_order_end(intent: OrderIntent, event: Event) -> None:
        nonlocal orders_ended
        # Each order has exactly one end: every create sent beyond one per ended order
        # was a retry (10006, 5xx, a lost reply); an order still in its other lane may
        # count for a moment.
        orders_ended += 1
        metrics.order_retries = rest.create_sends - orders_ended
        fill = await _journal_outcome(journal, rest, intent, event)
        if fill is not None:
            pnl.add(fill)

    runner = StrategyRunner(
        engine,
        clock_ms=rest.now_ms,
        orders=orders_send,
        subscriptions=subs_send,
        position_requests=requests_send,
        journal=journal,
        metrics=metrics,
        heartbeat=notifier.watchdog,  # vps: a hung strategy loop stops the pings
    )
    # -- remote control: control core, HTTP server, Telegram (app/frontends.py) --
    control = Control(
        runner=runner,
        shutdown=shutdown,
        journal=journal,
        metrics=metrics,
        pnl=pnl,
        clock_ms=rest.now_ms,
        mode=settings.exchange.mode,
        session_tag=session_tag,
    )
    frontends = Frontends(settings, control, probe, telegram_transport=options.telegram_transport)
    await frontends.restore()
    # -- end remote control --
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
                await trading.start(
                    partial(
                        run_status,
                        view=lambda rate: panel_view(engine, facts, metrics, rest.now_ms(), rate),
                        notifier=notifier,
                        facts=facts,
                    ),
                    metrics,
                    _describe(engine),
                    options.console,
                )
                await frontends.start(trading)  # watcher, HTTP server, Telegram
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
                    partial(
                        run_reconcile,
                        epoch=epoch,
                        current=lambda: engine.symbol,
                        traded=lambda: runner.traded,
                        leftovers=LeftoverCloser(rest, instruments, prefix, session_tag),
                        clock_ms=rest.now_ms,
                    ),
                    rest,
                    requests_receive,
                    report,
                    settings.reconcile.interval_s,
                )
                await trading.start(
                    partial(
                        runner.run,
                        # vps: the timer turns at least as often as the watchdog pings
                        tick_interval_s=min(
                            options.tick_interval_s,
                            notifier.watchdog_interval_s or options.tick_interval_s,
                        ),
                    ),
                    feed.receiver,
                    control_receive,
                )
                await trading.start(
                    partial(run_market_data, policy=options.ws_policy, on_gap=market_gap),
                    endpoints.ws_public_url,
                    subs_receive,
                    feed,
                    instruments,
                    market_resync,
                    metrics,
                )
                await report(Resync(reason="start-up"))
                await _adopt_positions(rest, prefix, scanner, scanner_config, report)
                if scanner.current is not None:  # adopted: watched like a traded symbol
                    runner.traded.add(scanner.current)
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
                    frontends=frontends,
                )
            )
            frontends.announce_start()
            notifier.ready(_describe(engine)())  # vps: systemd READY=1
            await shutdown.requested.wait()
            notifier.stopping(f"stopping: {shutdown.reason}")  # vps: systemd STOPPING=1
            logger.warning("shutting down: {}", shutdown.reason)
            clean = await _graceful_stop(runner, rest, prefix, inflight, stop_timeout_s)
            await journal.record("stop", reason=shutdown.reason, summary=metrics.summary())
            logger.info("shutdown complete: state {} | {}", engine.state.value, metrics.summary())
            await frontends.announce_stop(shutdown.reason, clean)
            trading.cancel_scope.cancel()
            return clean
    except BaseException:
        # a crash or an outside cancel: the notice goes out before the tree ends
        frontends.announce_crash()
        raise


async def _refuse_hedge_mode(rest: BybitRest, instruments: dict[str, Instrument]) -> None:
    """Refuse a hedge-mode account before anything is placed (issue 9).

    The bot sends one-way orders (``positionIdx`` 0): in hedge mode Bybit rejects them,
    closes included, forever. Position rows with ``positionIdx`` 1 or 2 give it away:
    the open ones (one read of all), and a flat symbol's rows (Bybit lists both sides).
    """
    rows: list[PositionSnapshot] = list(await rest.open_positions())
    if instruments:
        rows.append(await rest.position(next(iter(instruments))))
    hedged = sorted({p.symbol for p in rows if p.position_idx in (1, 2)})
    if hedged:
        raise HedgeModeError(
            "hedge mode: the account holds two-sided positions "
            f"(positionIdx 1/2 on {', '.join(hedged)}); switch it to one-way mode "
            "(Bybit: Derivatives > Position mode) to run this bot"
        )


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

    def __init__(self, metrics: Metrics, facts: StatusFacts | None = None) -> None:
        self._metrics = metrics
        self._ledger = Ledger()
        self._facts = facts

    def add(self, fill: ReportFill) -> None:
        """Record one fill and refresh ``metrics.realised_pnl`` (net of fees)."""
        before = self._ledger.net
        self._ledger.add(fill)
        self._metrics.realised_pnl = f"{self._ledger.net:.4f}"
        if self._facts is not None:  # vps: round trips, wins, today's net for the panel
            report = self._ledger.report()
            self._facts.trades, self._facts.wins = len(report.trips), report.wins
            self._facts.add_net(fill.ts_ms, self._ledger.net - before)

    @property
    def net(self) -> Decimal:
        """Realised PnL minus fees of this run (the control core's ``PnlSource``)."""
        return self._ledger.net

    def trips(self) -> tuple[RoundTrip, ...]:
        """Round trips closed this run, oldest first."""
        return self._ledger.report().trips


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
        # the order's cumulative fee (cumFee) when the exchange sent it, else the fills'
        fee = event.fee
        if fee == 0:
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
