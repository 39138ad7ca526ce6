"""The trading tree's wiring: its channels and components, built once, named.

``wire`` builds, once per run, two attrs objects: ``Channels`` (every channel of the
tree, both ends, sized in one place) and ``Wiring`` (the components and the callbacks
the tasks report through), so each task's start in ``app.bot`` names what it is
given. ``BotOptions`` is what the caller of a run decides beyond the settings (the
run's length, the panel, the transports tests swap in).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import httpx
import trio
from loguru import logger

from ..bybit.errors import BybitError
from ..bybit.rest import BybitRest, Credentials
from ..bybit.ws import WsPolicy
from ..config import ExchangeSettings, Settings, engine_config
from ..core.model import (
    Event,
    Instrument,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    Resync,
    RiskState,
)
from ..core.pnl import Fill, Ledger
from ..core.scanner import ScannerConfig
from ..core.strategy import Engine, make_session_tag
from .confirm import ExecutionConfig
from .control import send_control
from .feed import MarketFeed
from .frontends import Frontends
from .journal import Journal
from .metrics import Metrics
from .order_tracking import InFlight, OrderWatch
from .prom import HttpProbe
from .reconcile import OrderEpoch
from .remote import Control
from .risk_state import lift_halt
from .scanner import Scanner
from .sdnotify import Notifier
from .shutdown import ShutdownRequest
from .status import StatusConsole, StatusFacts
from .stopping import JournalWriter
from .strategy import OrderCommand, PositionRequest, StrategyRunner

__all__ = [
    "CONTROL_CHANNEL",
    "BotOptions",
    "Channels",
    "Connected",
    "PnlTracker",
    "Wiring",
    "credentials",
    "wire",
]


#: control events (order outcomes, positions, switches); a full one is a bug
CONTROL_CHANNEL = 256
#: orders from the strategy to execution, and position reads to reconcile
ORDER_CHANNEL = 64
#: symbols to subscribe, from the strategy to market data
SUBSCRIPTION_CHANNEL = 16


@attrs.frozen(kw_only=True)
class Channels:
    """Every channel of the trading tree, both ends.

    Control traffic is awaited and sized so that a full channel means a bug. Market
    data does not travel on a channel: it is the coalescing ``MarketFeed`` mailbox
    (``Wiring.feed``), the one lossy hop.
    """

    control_send: trio.MemorySendChannel[Event]
    control_receive: trio.MemoryReceiveChannel[Event]
    orders_send: trio.MemorySendChannel[OrderCommand]
    orders_receive: trio.MemoryReceiveChannel[OrderCommand]
    subs_send: trio.MemorySendChannel[str]
    subs_receive: trio.MemoryReceiveChannel[str]
    requests_send: trio.MemorySendChannel[PositionRequest]
    requests_receive: trio.MemoryReceiveChannel[PositionRequest]

    @classmethod
    def open(cls) -> Channels:
        control = trio.open_memory_channel[Event](CONTROL_CHANNEL)
        orders = trio.open_memory_channel[OrderCommand](ORDER_CHANNEL)
        subs = trio.open_memory_channel[str](SUBSCRIPTION_CHANNEL)
        requests = trio.open_memory_channel[PositionRequest](ORDER_CHANNEL)
        return cls(
            control_send=control[0],
            control_receive=control[1],
            orders_send=orders[0],
            orders_receive=orders[1],
            subs_send=subs[0],
            subs_receive=subs[1],
            requests_send=requests[0],
            requests_receive=requests[1],
        )


#: round trips (and fills) the live tracker keeps for the front ends; its totals and
#: counts cover the whole run however long it is
TRIPS_KEPT = 1000


@attrs.define(eq=False)
class PnlTracker:
    """Feeds this run's fills to its ledger and shows the result (metrics, the panel).

    The control core reads ``ledger`` (net PnL, round trips and wins) directly.
    """

    _metrics: Metrics
    _facts: StatusFacts | None = None
    ledger: Ledger = attrs.field(init=False, factory=lambda: Ledger(history=TRIPS_KEPT))

    def add(self, fill: Fill) -> None:
        """Record one fill and refresh ``metrics.realised_pnl`` (net of fees)."""
        ledger = self.ledger
        before = ledger.net
        ledger.add(fill)
        self._metrics.realised_pnl = f"{ledger.net:.4f}"
        if self._facts is not None:  # round trips, wins, today's net for the panel
            self._facts.trades, self._facts.wins = ledger.trip_count, ledger.wins
            self._facts.add_net(fill.ts_ms, ledger.net - before)


@attrs.define(kw_only=True)
class Wiring:
    """The components of one run and the callbacks its tasks report through."""

    settings: Settings
    rest: BybitRest
    instruments: dict[str, Instrument]
    journal: Journal
    shutdown: ShutdownRequest
    session_tag: str
    engine: Engine
    channels: Channels
    metrics: Metrics
    facts: StatusFacts
    notifier: Notifier
    pnl: PnlTracker
    runner: StrategyRunner
    frontends: Frontends
    execution: ExecutionConfig
    scanner_config: ScannerConfig
    scanner: Scanner
    #: market data -> strategy: latest book wins, trades kept (app/feed.py)
    feed: MarketFeed
    watch: OrderWatch = attrs.field(factory=OrderWatch)
    epoch: OrderEpoch = attrs.field(factory=OrderEpoch)
    inflight: InFlight = attrs.field(factory=InFlight)
    #: orders that reached their end (to count create retries)
    orders_ended: int = 0

    @property
    def prefix(self) -> str:
        return self.settings.strategy.link_id_prefix

    @property
    def clock_ms(self) -> Callable[[], int]:
        return self.rest.now_ms

    # -- the callbacks: everything reaches the engine through the control channel

    async def report(self, event: Event) -> None:
        await send_control(self.channels.control_send, event, "control")

    async def report_outcome(self, event: Event) -> None:
        # counted before it is queued: a position read overlapping it is read again
        self.epoch.bump()
        await send_control(self.channels.control_send, event, "control")

    async def resync(self, reason: str) -> None:
        self.metrics.reconnects += 1
        await self.report(Resync(reason=reason))

    async def market_resync(self, reason: str) -> None:
        # a public-stream gap: also clear the engine's trade window
        self.metrics.reconnects += 1
        await self.report(Resync(reason=reason, market_gap=True))

    async def market_gap(self, reason: str) -> None:
        await self.report(Resync(reason=reason, market_gap=True))

    async def on_order_end(self, intent: OrderIntent, event: Event) -> None:
        # Each order has exactly one end: every create sent beyond one per ended order
        # was a retry (10006, 5xx, a lost reply); an order still in its other lane may
        # count for a moment.
        self.orders_ended += 1
        self.metrics.order_retries = self.rest.create_sends - self.orders_ended
        fill = await journal_outcome(self.journal, self.rest, intent, event)
        if fill is not None:
            self.pnl.add(fill)


async def journal_outcome(
    journal: Journal, rest: BybitRest, intent: OrderIntent, event: Event
) -> Fill | None:
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
    if filled <= 0 or price is None:
        return None
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
    return Fill(
        ts_ms=rest.now_ms(),
        symbol=intent.symbol,
        side=intent.side.value,
        qty=filled,
        price=price,
        fee=fee,
    )


@attrs.frozen(kw_only=True)
class BotOptions:
    """How one run is wired: everything that is not a setting.

    Where the exchange is and the keys to sign with are settings (``[exchange]``):
    the built-in simulator's URLs and keys are put there when it starts.
    """

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
    # systemd's notify socket (READY/WATCHDOG/STATUS/STOPPING);
    # None: no notifications
    notifier: Notifier | None = None


def credentials(exchange: ExchangeSettings) -> Credentials:
    """The key pair the REST client and the private stream both sign with, revealed
    only here, where signing needs it.

    A run needs both keys: config refuses a real exchange without them, and ``scalper
    run`` gives a sim run the simulator's when none are set.
    """
    if exchange.api_key is None or exchange.api_secret is None:
        raise ValueError("exchange.api_key and exchange.api_secret: a run signs with both")
    return Credentials(api_key=exchange.api_key.reveal(), api_secret=exchange.api_secret.reveal())


@attrs.frozen(kw_only=True)
class Connected:
    """What a run has before its journal opens: the exchange, its rules, the old latch."""

    settings: Settings
    options: BotOptions
    rest: BybitRest
    instruments: dict[str, Instrument]
    shutdown: ShutdownRequest
    #: the newest halt latch of an earlier run (read before the journal writer opens)
    restored: RiskState | None
    #: order round-trip and rate-limit headroom, for /metrics
    probe: HttpProbe | None = None


async def wire(connected: Connected, journal: Journal) -> Wiring:
    """Journal the start, restore (or lift) the halt latch, build every component."""
    settings, options, rest = connected.settings, connected.options, connected.rest
    instruments, shutdown, restored = (
        connected.instruments,
        connected.shutdown,
        connected.restored,
    )
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
    channels = Channels.open()
    metrics = Metrics()
    facts = StatusFacts(mode=settings.exchange.mode)  # the panel's facts
    notifier = options.notifier or Notifier(None)  # systemd's notifications
    pnl = PnlTracker(metrics, facts)
    runner = StrategyRunner(
        engine,
        clock_ms=rest.now_ms,
        orders=channels.orders_send,
        subscriptions=channels.subs_send,
        position_requests=channels.requests_send,
        journal=journal,
        metrics=metrics,
        heartbeat=notifier.watchdog,  # a hung strategy loop stops the pings
    )
    # remote control: the control core and its front ends (HTTP server, Telegram)
    control = Control(
        runner=runner,
        shutdown=shutdown,
        journal=journal,
        metrics=metrics,
        pnl=pnl.ledger,
        clock_ms=rest.now_ms,
        mode=settings.exchange.mode,
        session_tag=session_tag,
    )
    frontends = Frontends(
        settings, control, connected.probe, telegram_transport=options.telegram_transport
    )
    await frontends.restore()
    scanner_config = ScannerConfig(
        min_turnover=settings.scanner.min_turnover,
        switch_ratio=settings.scanner.switch_ratio,
        exclude=settings.scanner.exclude,
    )
    return Wiring(
        settings=settings,
        rest=rest,
        instruments=instruments,
        journal=journal,
        shutdown=shutdown,
        session_tag=session_tag,
        engine=engine,
        channels=channels,
        metrics=metrics,
        facts=facts,
        notifier=notifier,
        pnl=pnl,
        runner=runner,
        frontends=frontends,
        execution=ExecutionConfig(
            poll_interval_s=settings.execution.poll_interval_ms / 1000,
            confirm_timeout_s=settings.execution.confirm_timeout_s,
        ),
        scanner_config=scanner_config,
        scanner=Scanner(rest, scanner_config, instruments),
        feed=MarketFeed(metrics),
    )
