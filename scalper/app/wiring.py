"""The trading tree's wiring: its channels and components, built once, named.

``run_bot`` used to build a dozen channel ends, callbacks and components as local
variables of one long function and hand them to each task positionally; here they are
two attrs objects, ``Channels`` (every channel of the tree, both ends, sized in one
place) and ``Wiring`` (the components and the callbacks the tasks report through),
so each task's start in ``app.bot`` names what it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import trio
from loguru import logger

from ..bybit.errors import BybitError
from ..bybit.rest import BybitRest
from ..config import Settings
from ..core.model import Event, Instrument, OrderFailed, OrderFilled, OrderIntent, Resync
from ..core.pnl import Fill, Ledger, RoundTrip
from ..core.scanner import ScannerConfig
from ..core.strategy import Engine
from .confirm import ExecutionConfig
from .control import send_control
from .feed import MarketFeed
from .frontends import Frontends
from .journal import Journal
from .metrics import Metrics
from .order_tracking import InFlight, OrderWatch
from .reconcile import OrderEpoch
from .scanner import Scanner
from .sdnotify import Notifier
from .shutdown import ShutdownRequest
from .status import StatusFacts
from .strategy import OrderCommand, PositionRequest, StrategyRunner

__all__ = ["CONTROL_CHANNEL", "Channels", "PnlTracker", "Wiring"]

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


class PnlTracker:
    """Net realised PnL of this run, from the fills (shown by the status panel)."""

    def __init__(self, metrics: Metrics, facts: StatusFacts | None = None) -> None:
        self._metrics = metrics
        self._ledger = Ledger()
        self._facts = facts

    def add(self, fill: Fill) -> None:
        """Record one fill and refresh ``metrics.realised_pnl`` (net of fees)."""
        before = self._ledger.net
        self._ledger.add(fill)
        self._metrics.realised_pnl = f"{self._ledger.net:.4f}"
        if self._facts is not None:  # round trips, wins, today's net for the panel
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
