"""The backtest's venue: the simulator's matching engine, driven by a recorded book and tape.

A backtest must fill orders the way the exchange would, not with a separate paper
model, so this module *composes* the simulator's own ``sim.matching.Matcher`` (the code
that fills the bot's orders in ``scalper run``) instead of re-implementing it:

* ``RecordedBook`` is a ``sim.book.SimBook`` whose levels come from the replayed
  ``core.book.OrderBook`` (recorded books have gaps between levels, which the synthetic
  book never has, so walking and summing are overridden for sparse ladders). Before an
  order reaches the matcher the mirror is loaded with the recorded depth, so a market
  order walks the recorded levels (partial fills when they run out, Bybit's protection
  price stops the walk 3 % through the touch). While an order rests only the touch is
  mirrored, which is all the matcher's crossing rule reads.
* **Queue position.** A PostOnly order joins the back of its level: it has ``ahead`` =
  the recorded size at its price when it arrived. Recorded trades at its price eat
  ``ahead`` first; only the volume beyond reaches the matcher (``fill_resting``), which
  then fills the order as maker. A trade *through* the price, or the opposite touch
  moving onto it, fills it whole (the matcher's rule). The level shrinking below
  ``ahead`` (cancels ahead of us) shortens the queue: ``ahead = min(ahead, size)``.
* **Latency.** Orders and cancels reach the matcher ``latency_ms`` after the engine
  sent them (the book and tape move meanwhile); the outcome reaches the engine when it
  happens. An order still resting ``confirm_timeout_ms`` after it was sent is cancelled,
  as the bot's execution task does, and reported with its true filled quantity.
* **Fees** are ours (maker 0.02 %, taker 0.055 % by default, settable): computed from
  each execution's price, quantity and maker flag, so the matcher's constant rates do
  not decide them.
* **Exchange-side stops** are the matcher's own (reference section 8): an entry's
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

import attrs

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
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderType,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    Side,
    Trade,
    TriggerBy,
)
from scalper.sim.accounts import Account, Order, Position
from scalper.sim.errors import VenueError
from scalper.sim.market import Market, PublicTrade
from scalper.sim.matching import Matcher

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
#: levels of each side loaded into the mirror before an order is matched
_QUEUE_SCAN_DEPTH = 25


@attrs.define
class _Working:
    """One of our orders from the moment the engine sent it until it ended."""

    intent: OrderIntent
    sent_ms: int
    order: Order | None = None
    #: lots of the recorded queue ahead of it at its price
    ahead: int = 0
    reported_qty: Decimal = _ZERO
    cancel_sent: bool = False
    #: the cancel is the execution task's, after the confirmation timeout
    timed_out: bool = False


_InFlight = tuple[int, Literal["place", "cancel"], str]


class MatchingVenue:
    """One symbol's exchange for a backtest: the recorded market + the simulator's matcher."""

    def __init__(self, book: OrderBook, instrument: Instrument, settings: VenueSettings) -> None:
        self.symbol = instrument.symbol
        self.settings = settings
        self._book = book
        self._spec = spec_for(instrument)
        self._tick = float(instrument.tick_size)
        self._step = float(instrument.qty_step)
        self.market = Market((self._spec,), seed=1, rate=1.0)
        self._sm = self.market.symbols[self.symbol]
        self._mirror = RecordedBook()
        self._sm.book = self._mirror  # the synthetic book is never used
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
        self._working: dict[str, _Working] = {}
        self._events: list[Event] = []
        self._last_price: float | None = None
        #: the recorded last trade and mid, on the tick grid (what stops compare with)
        self._last_tick: int | None = None
        self._mark_tick: int | None = None
        self._tick_cache: dict[Decimal, int] = {}
        #: every execution, in order
        self.fills: list[BacktestFill] = []
        self.realised_pnl = _ZERO
        self.fees = _ZERO
        #: orders that reached the matcher, and stops it fired
        self.orders = 0
        self.stops_fired = 0

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
        self._working[link] = _Working(intent=intent, sent_ms=self._now)
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
        if not inflight and not self._events:
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
        self._load_depth()
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
        mark = len(self._events)
        self.orders += 1
        try:
            order = self.matcher.create_order(self.account, params)
        except VenueError as exc:
            del self._working[link]
            self._events.append(OrderFailed(order_link_id=link, reason=f"rejected: {exc}"))
            return
        self._events.insert(mark, OrderAccepted(order_link_id=link, order_id=order.order_id))
        working.order = order
        if order.is_open and link in self._working:
            tick = self._ticks(order.price)
            side = self._mirror.bids if order.side == "Buy" else self._mirror.asks
            working.ahead = side.get(tick, 0)
        self._sync_touch()

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
        # the recorded mid stands in for the mark (the archives carry none)
        mark = (top.bid + top.ask) / (2 * self._tick)
        self._sm.mark_px = mark
        self._mark_tick = max(1, round(mark))  # as SymbolMarket.mark_tick reads it
        pos = self.account.position(self.symbol)
        if pos.stop_loss or pos.take_profit:
            self._maybe_fire(pos)
        if self.matcher.resting[self.symbol]:
            self._shorten_queues()
            self._sync_touch()
            self.matcher.fill_resting(self.symbol, [], now_ms)
            self._flushed(now_ms)  # fill_resting leaves the push to its caller
        return self._take_events()

    def on_trades(self, trades: Sequence[Trade], now_ms: int) -> list[Event]:
        """Recorded public trades: they fill resting orders behind their queue; stops fire."""
        self._now = max(self._now, now_ms)
        self._exec_ms = now_ms
        if not trades:
            return []
        self._last_price = trades[-1].price
        self._last_tick = round(self._last_price / self._tick)
        pos = self.account.position(self.symbol)
        if pos.stop_loss or pos.take_profit:
            self._maybe_fire(pos)
        if self.matcher.resting[self.symbol]:
            self._fill_from_tape(trades, now_ms)
        return self._take_events()

    def _fill_from_tape(self, trades: Sequence[Trade], now_ms: int) -> None:
        tape = [
            PublicTrade(
                symbol=self.symbol,
                tick=round(t.price / self._tick),
                lots=max(1, round(t.qty / self._step)),
                side=t.side.value,
                ts=t.ts_ms,
                trade_id="",
                seq=0,
                tick_direction="",
            )
            for t in trades
        ]
        left = [t.lots for t in tape]  # volume at a price not yet given to one of ours
        resting = self.matcher.resting
        entries = list(resting[self.symbol].items())
        step = self._spec.qty_step
        try:
            for order_id, (account, order) in entries:
                working = self._working.get(order.order_link_id)
                if not order.is_open or working is None:
                    continue
                limit = self._ticks(order.price)
                buy = order.side == "Buy"
                taker = "Sell" if buy else "Buy"
                reach: list[PublicTrade] = []
                at_price: list[int] = []
                for i, trade in enumerate(tape):
                    if trade.side != taker:
                        continue
                    if (trade.tick < limit) if buy else (trade.tick > limit):
                        reach.append(trade)  # traded through: the matcher fills it whole
                    elif trade.tick == limit and left[i] > 0:
                        eaten = min(working.ahead, left[i])
                        working.ahead -= eaten
                        beyond = left[i] - eaten
                        if beyond > 0:
                            reach.append(attrs.evolve(trade, lots=beyond))
                            at_price.append(i)
                if not reach:
                    continue
                before = order.cum_qty
                resting[self.symbol] = {order_id: (account, order)}
                self.matcher.fill_resting(self.symbol, reach, now_ms)
                self._flushed(now_ms)  # fill_resting leaves the push to its caller
                took = int((order.cum_qty - before) / step)
                for i in at_price:  # what this order took at its price is gone for the next
                    used = min(took, left[i])
                    left[i] -= used
                    took -= used
        finally:
            resting[self.symbol] = {k: v for k, v in entries if v[1].is_open}

    # ------------------------------------------------------------ stops

    def protect(self, symbol: str, stop_loss: Decimal, trigger_by: TriggerBy) -> list[Event]:
        """``ProtectPosition``: the matcher's trading-stop; ``ProtectionSet`` or ``...Failed``."""
        if symbol != self.symbol:
            return [ProtectionFailed(symbol=symbol, reason=f"no market for {symbol}")]
        self._exec_ms = self._now
        self._load_depth()  # the side rule compares with the last price or the mark now
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
            tick = self._last_tick if by == "LastPrice" else self._mark_tick
            if tick is None:
                continue
            level = self._ticks(price)  # stops lie on the tick grid (the matcher checks)
            falls = stop == long  # a long's stop-loss and a short's take-profit fire falling
            if (tick <= level) if falls else (tick >= level):
                crossed = True
        if not crossed:
            return
        size = pos.size
        self._load_depth()
        if self._last_tick is not None:
            self._sm.last_tick = self._last_tick
        self.matcher.check_stops(self.symbol, self._exec_ms)
        self._flushed(self._exec_ms)
        if self.account.position(self.symbol).size != size:
            self.stops_fired += 1
            # what the bot's reconcile reads after a fill it did not place
            self._events.extend(self.snapshot_events(self.symbol))

    # ------------------------------------------------------------ internals

    def _ticks(self, price: Decimal) -> int:
        ticks = self._tick_cache.get(price)
        if ticks is None:
            ticks = self._tick_cache[price] = int(price / self._spec.tick_size)
        return ticks

    def _levels(self, side: Side, depth: int | None) -> list[tuple[int, int]]:
        tick, step = self._tick, self._step
        return [
            (round(p / tick), max(1, round(s / step))) for p, s in self._book.levels(side, depth)
        ]

    def _load_depth(self) -> None:
        """Mirror the recorded depth (both sides) so an order walks the recorded levels."""
        self._mirror.load(self._levels(Side.BUY, None), self._levels(Side.SELL, None))
        mirror = self._mirror
        if mirror.has_bids and mirror.has_asks:
            self._sm.mark_px = (mirror.bid_top + mirror.ask_top) / 2
            self._mark_tick = max(1, round(self._sm.mark_px))
        if self._last_price is not None:
            self._sm.last_tick = round(self._last_price / self._tick)
        elif self._mark_tick is not None:
            self._sm.last_tick = self._mark_tick

    def _sync_touch(self) -> None:
        """Mirror only the touch: all the matcher's crossing rule reads while orders rest."""
        self._mirror.load(self._levels(Side.BUY, 1), self._levels(Side.SELL, 1))

    def _shorten_queues(self) -> None:
        """A level smaller than the queue we assumed ahead of us: those ahead cancelled."""
        sides: dict[str, dict[int, int]] = {}
        for _order_id, (_account, order) in self.matcher.resting[self.symbol].items():
            working = self._working.get(order.order_link_id)
            if working is None or working.ahead == 0:
                continue
            key = order.side
            if key not in sides:
                side = Side.BUY if key == "Buy" else Side.SELL
                sides[key] = dict(self._levels(side, _QUEUE_SCAN_DEPTH))
            levels = sides[key]
            tick = self._ticks(order.price)
            deepest = min(levels) if key == "Buy" and levels else max(levels, default=tick)
            inside = tick >= deepest if key == "Buy" else tick <= deepest
            if inside:  # within the levels read: absent means nobody is left ahead
                working.ahead = min(working.ahead, levels.get(tick, 0))

    def _flushed(self, _now: int) -> None:
        """The matcher's end-of-operation hook: turn what changed into engine events."""
        matcher = self.matcher
        matcher.trades.clear()  # our own taker prints: the recorded tape is the market
        batches, matcher.changes = matcher.changes, {}
        for batch in batches.values():
            for execution in batch.executions:
                self._record(execution.order, execution.price, execution.qty, execution.is_maker,
                             execution.exec_pnl)  # fmt: skip
            for order in batch.orders.values():
                self._report(order)

    def _record(
        self, order: Order, price: Decimal, qty: Decimal, maker: bool, realised: Decimal
    ) -> None:
        settings = self.settings
        fee = price * qty * (settings.maker_fee if maker else settings.taker_fee)
        side = Side.BUY if order.side == "Buy" else Side.SELL
        self.realised_pnl += realised
        self.fees += fee
        self.fills.append(
            BacktestFill(
                t=self._exec_ms,
                order_link_id=order.order_link_id,
                side=side,
                qty=qty,
                price=price,
                maker=maker,
                fee=fee,
                reduce_only=order.reduce_only,
                realised=realised,
            )
        )

    def _report(self, order: Order) -> None:
        working = self._working.get(order.order_link_id)
        if working is None:
            return  # not ours (a stop's close), or already reported as ended
        link = order.order_link_id
        cum = order.cum_qty
        avg = order.avg_price if cum > 0 else None
        if order.status == "Filled":
            assert avg is not None
            del self._working[link]
            self._events.append(OrderFilled(order_link_id=link, filled_qty=cum, avg_price=avg))
        elif order.status == "PartiallyFilled" and cum > working.reported_qty:
            assert avg is not None
            working.reported_qty = cum
            self._events.append(
                OrderPartiallyFilled(order_link_id=link, filled_qty=cum, avg_price=avg)
            )
        elif not order.is_open:
            del self._working[link]
            reason = f"{order.status.lower()} ({order.reject_reason})"
            if working.cancel_sent and order.cancel_type == "CancelByUser":
                seconds = self.settings.confirm_timeout_ms / 1000
                reason = (
                    f"not filled within {seconds:g}s: cancelled"
                    if working.timed_out
                    else ("cancelled")
                )
            self._events.append(
                OrderFailed(order_link_id=link, reason=reason, filled_qty=cum, avg_price=avg)
            )

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events
