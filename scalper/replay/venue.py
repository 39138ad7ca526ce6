"""The backtest's venue: the simulator's matching engine, driven by a recorded book and tape.

A backtest must fill orders the way the exchange would, not with a separate paper
model, so this module *composes* the simulator's own ``sim.matching.Matcher`` (the code
that fills the bot's orders in ``scalper run``) instead of re-implementing it:

* The recorded market reaches the matcher through ``replay.mirror.BookMirror`` (depth
  before an order is matched, the touch while orders rest, the mid as the mark), the
  queue ahead of a resting order through ``replay.queue.QueuePosition``, and what the
  matcher did comes back as fills and engine events through ``replay.orders``.
* **Latency.** Orders and cancels reach the matcher ``latency_ms`` after the engine
  sent them (the book and tape move meanwhile); the outcome reaches the engine when it
  happens. An order still resting ``confirm_timeout_ms`` after it was sent is cancelled,
  as the bot's execution task does, and reported with its true filled quantity.
* **Exchange-side stops** are the matcher's own, as on Bybit: an entry's
  ``OrderIntent.stop_loss`` goes with the order (``stopLoss``/``slTriggerBy``, Full
  mode) and is armed on the position when it fills; ``ProtectPosition`` is the
  matcher's ``set_trading_stop`` (answered at once: no latency on that call).
  ``check_stops`` fires them on the recorded market (``LastPrice``: the last recorded
  trade; ``MarkPrice``: the recorded mid, the simulator's mark), a reduce-only market
  close without orderLinkId that walks the recorded depth; the engine then gets the
  position read its reconcile would make. ``RequestClosedPnl`` is answered with the
  matcher's closed-PnL records, through the same wire row and parser as live (their
  fees are the simulator's rates, the defaults here).

Time is passed in; nothing reads a clock or draws an unseeded random number, so the same
recording and settings give the same fills.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from scalper.core.book import OrderBook
from scalper.core.instrument import to_decimal
from scalper.core.model import (
    BookTop,
    ClosedPnlRows,
    Event,
    Instrument,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderIntent,
    OrderType,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    Side,
    Trade,
    TriggerBy,
)
from scalper.sim.accounts import Account, Position
from scalper.sim.errors import VenueError
from scalper.sim.market import Market
from scalper.sim.matching import Matcher

from .mirror import BookMirror
from .orders import OrderOutcomes, Working
from .queue import QueuePosition
from .recorded import BacktestFill, RecordedBook, VenueSettings, spec_for

__all__ = [
    "BacktestFill",
    "MatchingVenue",
    "RecordedBook",
    "VenueSettings",
    "spec_for",
]

_ZERO = Decimal(0)
_ACCOUNT = "backtest"


_InFlight = tuple[int, Literal["place", "cancel"], str]


class MatchingVenue:
    """One symbol's exchange for a backtest: the recorded market + the simulator's matcher."""

    def __init__(self, book: OrderBook, instrument: Instrument, settings: VenueSettings) -> None:
        self.symbol = instrument.symbol
        self.settings = settings
        self._spec = spec_for(instrument)
        self.market = Market((self._spec,), seed=1, rate=1.0)
        self._sm = self.market.symbols[self.symbol]
        self._mirror = BookMirror(book, self._sm, instrument)
        self.account = Account(api_key=_ACCOUNT, api_secret="", balance=settings.balance)
        self.matcher = Matcher(
            self.market,
            {_ACCOUNT: self.account},
            seed=1,
            clock=lambda: self._exec_ms,
            flush=self._flushed,
        )
        self._now = 0
        self._exec_ms = 0
        self._inflight: deque[_InFlight] = deque()
        self._working: dict[str, Working] = {}
        self._outcomes = OrderOutcomes(settings, self._working, lambda: self._exec_ms)
        self._queue = QueuePosition(
            self.matcher,
            self.symbol,
            self._mirror,
            self._working,
            instrument.qty_step,
            self._flushed,
        )
        #: orders that reached the matcher, and stops it fired
        self.orders = 0
        self.stops_fired = 0

    @property
    def fills(self) -> list[BacktestFill]:
        """Every execution, in order."""
        return self._outcomes.fills

    @property
    def realised_pnl(self) -> Decimal:
        """Gross PnL realised so far."""
        return self._outcomes.realised_pnl

    @property
    def fees(self) -> Decimal:
        """Fees paid so far (ours, not the matcher's)."""
        return self._outcomes.fees

    # ------------------------------------------------------------ reading

    def position(self) -> PositionSnapshot:
        """The position as Bybit's position read reports it (with its armed stop)."""
        pos = self.account.position(self.symbol)
        if pos.size == 0:
            return PositionSnapshot(symbol=self.symbol, side=None, size=_ZERO)
        return PositionSnapshot(
            symbol=self.symbol,
            side=Side.BUY if pos.size > 0 else Side.SELL,
            size=abs(pos.size),
            avg_price=pos.avg_price,
            realised_pnl=self.realised_pnl,
            stop_loss=pos.stop_loss or None,
            take_profit=pos.take_profit or None,
        )

    def unrealised(self, mark: float | None) -> Decimal:
        """PnL of the open position marked at ``mark`` (0 when flat or no price)."""
        pos = self.account.position(self.symbol)
        if pos.size == 0 or mark is None:
            return _ZERO
        return pos.unrealised(to_decimal(mark))

    def snapshot_events(self, symbol: str) -> list[Event]:
        """Answer to ``RequestPosition``: the position, then our open orders."""
        if symbol != self.symbol:
            return [
                PositionSnapshot(symbol=symbol, side=None, size=_ZERO),
                OpenOrders(symbol=symbol, order_link_ids=()),
            ]
        links = tuple(
            o.order_link_id
            for o in self.account.open_orders.values()
            if o.symbol == symbol and o.order_link_id
        )
        return [self.position(), OpenOrders(symbol=symbol, order_link_ids=links)]

    # ------------------------------------------------------------ orders

    def place(
        self, intent: OrderIntent, now_ms: int, top: BookTop | None, last_price: float | None
    ) -> list[Event]:
        """Send an order: it reaches the matcher ``latency_ms`` later."""
        link = intent.order_link_id
        self._now = max(self._now, now_ms)
        if intent.symbol != self.symbol:
            return [OrderFailed(order_link_id=link, reason=f"no market for {intent.symbol}")]
        self._working[link] = Working(intent=intent, sent_ms=self._now)
        self._inflight.append((self._now + self.settings.latency_ms, "place", link))
        return self.settle(self._now)

    def cancel(self, order_link_id: str, reason: str = "cancelled") -> list[Event]:
        """Send a cancel: it reaches the matcher ``latency_ms`` later (fills may come first)."""
        working = self._working.get(order_link_id)
        if working is None or working.cancel_sent:
            return []
        working.cancel_sent = True
        self._inflight.append((self._now + self.settings.latency_ms, "cancel", order_link_id))
        return self.settle(self._now)

    def expire(self, now_ms: int) -> list[Event]:
        """Cancel orders not final ``confirm_timeout_ms`` after they were sent (the bot's rule)."""
        self._now = max(self._now, now_ms)
        if not self._working:
            return self.settle(now_ms)
        timeout = self.settings.confirm_timeout_ms
        for link, working in list(self._working.items()):
            if not working.cancel_sent and now_ms - working.sent_ms >= timeout:
                working.cancel_sent = working.timed_out = True
                self._inflight.append((now_ms + self.settings.latency_ms, "cancel", link))
        return self.settle(now_ms)

    def settle(self, now_ms: int) -> list[Event]:
        """Carry out the orders and cancels that have reached the matcher by ``now_ms``."""
        if now_ms > self._now:
            self._now = now_ms
        inflight = self._inflight
        if not inflight and not self._outcomes.events:
            return []  # the common case, once per frame: nothing on its way
        while inflight and inflight[0][0] <= now_ms:
            at, kind, link = inflight.popleft()
            self._exec_ms = at
            if kind == "place":
                self._arrive(link)
            else:
                self._cancel_arrives(link)
        return self._take_events()

    def _arrive(self, link: str) -> None:
        working = self._working[link]
        intent = working.intent
        self._mirror.load_depth()
        params: dict[str, Any] = {
            "symbol": intent.symbol,
            "side": intent.side.value,
            "orderType": intent.order_type.value,
            "qty": format(intent.qty, "f"),
            "timeInForce": intent.time_in_force.value,
            "reduceOnly": intent.reduce_only,
            "orderLinkId": link,
        }
        if intent.order_type is OrderType.LIMIT and intent.price is not None:
            params["price"] = format(intent.price, "f")
        if intent.stop_loss is not None:
            params["stopLoss"] = format(intent.stop_loss, "f")
            params["slTriggerBy"] = intent.sl_trigger_by.value
            params["tpslMode"] = "Full"
        events = self._outcomes.events
        mark = len(events)
        self.orders += 1
        try:
            order = self.matcher.create_order(self.account, params)
        except VenueError as exc:
            del self._working[link]
            events.append(OrderFailed(order_link_id=link, reason=f"rejected: {exc}"))
            return
        self._outcomes.events.insert(
            mark, OrderAccepted(order_link_id=link, order_id=order.order_id)
        )
        working.order = order
        if order.is_open and link in self._working:
            tick = self._mirror.ticks(order.price)
            lots = self._mirror.lots
            side = lots.bids if order.side == "Buy" else lots.asks
            working.ahead = side.get(tick, 0)
        self._mirror.sync_touch()

    def _cancel_arrives(self, link: str) -> None:
        working = self._working.get(link)
        if working is None or working.order is None or not working.order.is_open:
            return  # it ended first (filled, or refused on arrival)
        params = {"symbol": self.symbol, "orderLinkId": link}
        self.matcher.cancel_order(self.account, params)

    # ------------------------------------------------------------ market

    def on_book(self, top: BookTop, now_ms: int) -> list[Event]:
        """A recorded book update: queues shorten, resting orders may be crossed, stops fire."""
        self._now = max(self._now, now_ms)
        self._exec_ms = now_ms
        self._mirror.mark_from(top)
        pos = self.account.position(self.symbol)
        if pos.stop_loss or pos.take_profit:
            self._maybe_fire(pos)
        if self.matcher.resting[self.symbol]:
            self._queue.shorten()
            self._mirror.sync_touch()
            self.matcher.fill_resting(self.symbol, [], now_ms)
            self._flushed(now_ms)  # fill_resting leaves the push to its caller
        return self._take_events()

    def on_trades(self, trades: Sequence[Trade], now_ms: int) -> list[Event]:
        """Recorded public trades: they fill resting orders behind their queue; stops fire."""
        self._now = max(self._now, now_ms)
        self._exec_ms = now_ms
        if not trades:
            return []
        self._mirror.last_from(trades)
        pos = self.account.position(self.symbol)
        if pos.stop_loss or pos.take_profit:
            self._maybe_fire(pos)
        if self.matcher.resting[self.symbol]:
            self._queue.fill_from_tape(trades, now_ms)
        return self._take_events()

    # ------------------------------------------------------------ stops

    def protect(self, symbol: str, stop_loss: Decimal, trigger_by: TriggerBy) -> list[Event]:
        """``ProtectPosition``: the matcher's trading-stop; ``ProtectionSet`` or ``...Failed``."""
        if symbol != self.symbol:
            return [ProtectionFailed(symbol=symbol, reason=f"no market for {symbol}")]
        self._exec_ms = self._now
        self._mirror.load_depth()  # the side rule compares with the last price or the mark now
        params = {
            "symbol": symbol,
            "positionIdx": 0,
            "tpslMode": "Full",
            "stopLoss": format(stop_loss, "f"),
            "slTriggerBy": trigger_by.value,
        }
        try:
            self.matcher.set_trading_stop(self.account, params)
        except VenueError as exc:
            if exc.code != 34040:  # "not modified": it holds that stop already
                events = self._take_events()
                return [*events, ProtectionFailed(symbol=symbol, reason=str(exc))]
        return [*self._take_events(), ProtectionSet(symbol=symbol, stop_loss=stop_loss)]

    def closed_pnl(self, symbol: str | None) -> list[Event]:
        """``RequestClosedPnl``: the closing orders' records, as the REST read returns them."""
        from scalper.bybit.parse import closed_pnl_from_wire
        from scalper.sim.rows import closed_pnl_row

        records = sorted(
            self.account.closed_pnl.values(), key=lambda r: (-r.created_ms, r.order.order_id)
        )
        rows = tuple(
            closed_pnl_from_wire(closed_pnl_row(r, self._spec))
            for r in records
            if symbol is None or r.order.symbol == symbol
        )
        return [ClosedPnlRows(rows=rows)]

    def _maybe_fire(self, pos: Position) -> None:
        """Let the matcher fire the position's stop when the recorded price crossed it.

        The check is the matcher's own rule, done here first on the recorded last and
        mark ticks so the depth is mirrored only when a stop really fires."""
        long = pos.size > 0
        crossed = False
        for price, by, stop in (
            (pos.stop_loss, pos.sl_trigger_by, True),
            (pos.take_profit, pos.tp_trigger_by, False),
        ):
            if not price:
                continue
            tick = self._mirror.last_tick if by == "LastPrice" else self._mirror.mark_tick
            if tick is None:
                continue
            level = self._mirror.ticks(price)  # stops lie on the tick grid (the matcher checks)
            falls = stop == long  # a long's stop-loss and a short's take-profit fire falling
            if (tick <= level) if falls else (tick >= level):
                crossed = True
        if not crossed:
            return
        size = pos.size
        self._mirror.load_depth()
        self._mirror.arm_last()
        self.matcher.check_stops(self.symbol, self._exec_ms)
        self._flushed(self._exec_ms)
        if self.account.position(self.symbol).size != size:
            self.stops_fired += 1
            # what the bot's reconcile reads after a fill it did not place
            self._outcomes.events.extend(self.snapshot_events(self.symbol))

    # ------------------------------------------------------------ internals

    def _flushed(self, _now: int) -> None:
        """The matcher's end-of-operation hook: what changed becomes fills and events."""
        self._outcomes.take_changes(self.matcher)

    def _take_events(self) -> list[Event]:
        return self._outcomes.take_events()
