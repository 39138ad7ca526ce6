"""What market data and our order's outcomes do to the engine.

Market data feeds the signal window and the book and drives the time rules (exits,
the kill switch, staleness); in Idle it may place an entry. An order event moves the
working order: an entry's fill opens the position (a partial one too: it is a real
position, protected on the exchange at once), a close's fill reduces it, a failure
goes back (an entry to Idle with a cooldown, a close to PositionOpen to retry).
"""

from __future__ import annotations

from decimal import Decimal

from .accounting import Position, Working
from .closing import Closing
from .commands import Alert, Command, Log, PlaceOrder, RequestPosition
from .events import (
    BookUpdate,
    OrderAccepted,
    OrderEvent,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    Tick,
    TradeTicks,
)
from .instrument import qty_for_notional, round_price, to_decimal
from .table import STAY, Move, Step, and_then
from .values import EngineState, OrderIntent, OrderType, Side, TimeInForce

__all__ = ["MarketHandlers"]

# Read on every market event: a module constant, not an attribute lookup on the Enum
# class (its metaclass makes that ~0.08 us in CPython 3.11).
_IDLE = EngineState.IDLE
_POSITION_OPEN = EngineState.POSITION_OPEN


class MarketHandlers(Closing):
    """Handlers of ``BookUpdate``, ``TradeTicks``, ``Tick`` and the order events."""

    def _signal_side(self) -> tuple[Side, float] | None:
        momentum = self.signals.momentum
        if momentum is None or abs(momentum) <= self.config.momentum_threshold:
            return None
        return (Side.BUY if momentum > 0 else Side.SELL), momentum

    # ------------------------------------------------------------ market data

    def _on_book(self, event: BookUpdate, now_ms: int, out: list[Command]) -> Step:
        top = event.top
        if top.symbol != self._symbol:
            return self._ignore_other(top.symbol, "book", now_ms, out)
        self._book = top
        if self._position is None:  # flat (the common case): no exits to run
            return self._entry_step(now_ms, out)
        return self._after_market(now_ms, out, entries=True)

    def _on_trades(self, event: TradeTicks, now_ms: int, out: list[Command]) -> Step:
        if event.symbol != self._symbol:
            return self._ignore_other(event.symbol, "trades", now_ms, out)
        trades = event.trades
        if not trades:
            return STAY
        self.signals.add_trades(trades)
        newest = trades[0].ts_ms
        for trade in trades:  # (a loop: a frame holds a few trades, max() costs more)
            if trade.ts_ms > newest:
                newest = trade.ts_ms
        last = self._last_trade_ts
        if last is None or newest > last:
            self._last_trade_ts = newest
        if self._position is None:  # flat (the common case): no exits to run
            return self._entry_step(now_ms, out)
        return self._after_market(now_ms, out, entries=True)

    def _on_tick(self, _event: Tick, now_ms: int, out: list[Command]) -> Step:
        return self._after_market(now_ms, out, entries=False)

    def _after_market(self, now_ms: int, out: list[Command], *, entries: bool) -> Step:
        exits: Step = STAY
        if self._position is not None and self._working is None:
            # PositionOpen, or Halted while still holding: exits run on every event.
            if self._state is _POSITION_OPEN:
                halt = self._kill_switch(now_ms, out)
                if halt is not STAY:
                    return halt
            exits = self._check_exits(now_ms, out)
        if not entries:
            return exits
        if exits is STAY:  # the common case: no closure to build per event
            return self._entry_step(now_ms, out)
        return and_then(exits, lambda: self._entry_step(now_ms, out))

    def _entry_step(self, now_ms: int, out: list[Command]) -> Step:
        """In Idle an entry may be placed; elsewhere a signal is only noted."""
        if self._state is _IDLE:
            return self._maybe_enter(now_ms, out)
        if "not-idle" not in self._logged and self._signal_side() is not None:
            self._log_once(  # (checked first: this runs on every event outside Idle)
                "not-idle",
                "info",
                f"Not in Idle state ({self._state.value}), skipping entry signal",
                out,
            )
        return STAY

    # ------------------------------------------------------------ entries

    def _entry_block(self, now_ms: int) -> tuple[str, str] | None:
        """Why no entry may be placed now (key, message), or None."""
        if self._operator.paused_by is not None:
            return "paused", f"paused by {self._operator.paused_by}"
        if self._pending is not None:
            return "pending", f"symbol switch to {self._pending[0]} pending"
        if not self.reconciled:
            return "reconcile", "waiting for position and open orders (reconcile before trade)"
        if self._reads.entry_read_pending:
            return "entry-read", "waiting for position read after an unclear entry"
        if self._released:
            # A let-go order may still be working: an old entry would double the
            # position, an old reduce-only close would cut the new one.
            return "released", "an earlier order's end is not confirmed yet"
        book = self._book
        if book is None or not book.valid:
            return "book", "book invalid or missing"
        stale = self.config.stale_ms
        if now_ms - book.ts_ms > stale:
            return "stale", f"book stale ({now_ms - book.ts_ms} ms old)"
        if self._last_trade_ts is None or now_ms - self._last_trade_ts > stale:
            return "stale-trades", "trades stale or missing"
        return None

    def _maybe_enter(self, now_ms: int, out: list[Command]) -> Step:
        signal = self._signal_side()
        if signal is None:
            return STAY
        side, momentum = signal
        block = self._entry_block(now_ms)
        if block is not None:
            key, why = block
            self._log_once(key, "debug", f"entry signal skipped: {why}", out)
            return STAY
        book = self._book
        instrument = self._instrument
        symbol = self._symbol
        assert book is not None and instrument is not None and symbol is not None
        spread = book.spread_bps
        if spread > self.config.max_spread_bps:
            return STAY  # a wide spread is normal market state, not worth a log line
        cfg = self.config
        liquid = (
            spread < cfg.liquid_spread_bps
            and book.bid_size > cfg.liquid_min_size
            and book.ask_size > cfg.liquid_min_size
        )
        mid = to_decimal(book.mid)
        sizing = qty_for_notional(instrument, cfg.position_usd, mid, market=liquid)
        if not sizing.ok:
            self._log_once("size", "info", f"entry refused: {sizing.refusal}", out)
            return STAY
        notional = sizing.qty * mid
        refusal = self.risk.allow_entry(notional, now_ms, self._unrealised())
        if refusal is not None:
            self._log_once("risk", "info", f"entry refused by risk: {refusal}", out)
            return STAY
        if liquid:
            # a market fills near the mid used for sizing: the stop starts from there
            order_type, price, tif, fill_near = OrderType.MARKET, None, TimeInForce.IOC, mid
        else:
            touch = book.bid if side is Side.BUY else book.ask
            price = round_price(instrument, to_decimal(touch), side)
            order_type, tif, fill_near = OrderType.LIMIT, TimeInForce.POST_ONLY, price
        intent = OrderIntent(
            symbol=symbol,
            side=side,
            order_type=order_type,
            qty=sizing.qty,
            price=price,
            time_in_force=tif,
            order_link_id=self._next_link_id("e"),
            stop_loss=self._exchange_stop(side, fill_near),
            sl_trigger_by=cfg.risk.exchange_stop_trigger,
        )
        self._working = Working(intent=intent, purpose="entry")
        self._reads.flat_confirmed = False
        self.risk.record_order(now_ms)
        out.append(PlaceOrder(intent=intent))
        direction = "long" if side is Side.BUY else "short"
        return Move(
            EngineState.ORDER_PENDING,
            f"entry signal {direction} momentum={momentum:.6f} spread={spread:.2f}bps "
            f"qty={sizing.qty} {'market' if liquid else f'limit @ {intent.price}'}",
        )

    def _on_accepted(self, event: OrderAccepted, now_ms: int, out: list[Command]) -> Step:
        working = self._working_for(event, now_ms, out)
        if working is not None:
            working.order_id = event.order_id
            self._note_order_id(event)
        return STAY

    def _take_order_facts(self, working: Working, event: OrderEvent) -> None:
        """Keep the order id an outcome event may carry (for its closed-PnL row)."""
        self._note_order_id(event)
        if event.order_id and working.order_id is None:
            working.order_id = event.order_id

    def _entry_fee(self, working: Working, event: OrderFilled | OrderFailed) -> Decimal:
        notional = working.filled_notional or Decimal(0)
        return self._fee_or_estimate(event.fee, notional)

    def _on_partial(self, event: OrderPartiallyFilled, now_ms: int, out: list[Command]) -> Step:
        working = self._working_for(event, now_ms, out)
        if working is None:
            return STAY
        self._take_order_facts(working, event)
        if working.purpose == "entry":
            working.update_fill(event.filled_qty, event.avg_price)
            if event.fee != 0:
                working.fee = event.fee
            out.append(
                Log(
                    level="info",
                    message=f"entry {working.link_id} partially filled "
                    f"qty={event.filled_qty} @ {event.avg_price}",
                )
            )
            # a partial fill is a real position: protect it on the exchange now
            self._protect(out)
            return STAY
        self._close_progress(working, event.filled_qty, event.avg_price, event.fee, now_ms)
        if self._position is None:  # pragma: no cover - a partial that closes all is a fill
            self._working = None
            return self._close_ended_flat(f"close {working.link_id} filled", now_ms, out)
        return STAY

    def _ended(
        self, event: OrderFilled | OrderFailed, now_ms: int, out: list[Command]
    ) -> Working | None:
        """The working order this outcome ends (no longer working), or None when late.

        An entry's fill is applied here; a close's is applied by the caller (it books
        the close's result).
        """
        working = self._working_for(event, now_ms, out)
        if working is None:
            return None
        self._take_order_facts(working, event)
        self._working = None
        if working.purpose == "entry":
            working.update_fill(event.filled_qty, event.avg_price)
        return working

    def _on_filled(self, event: OrderFilled, now_ms: int, out: list[Command]) -> Step:
        working = self._ended(event, now_ms, out)
        if working is None:
            return STAY
        if working.purpose == "entry":
            return self._open_from_entry(
                working,
                f"order filled qty={event.filled_qty} @ {event.avg_price}",
                self._entry_fee(working, event),
                now_ms,
                out,
            )
        self._close_progress(working, event.filled_qty, event.avg_price, event.fee, now_ms)
        cause = f"close filled qty={event.filled_qty} @ {event.avg_price}"
        if self._position is None:
            return self._close_ended_flat(cause, now_ms, out)
        # A capped or raced close left some: re-issue for the rest at once.
        out.append(Log(level="info", message=f"{cause}; {self._position.size} left"))
        return self._reissue_close(now_ms, out)

    def _on_failed(self, event: OrderFailed, now_ms: int, out: list[Command]) -> Step:
        working = self._ended(event, now_ms, out)
        if working is None:
            return STAY
        if working.purpose == "entry":
            if working.filled_qty > 0:
                return self._open_from_entry(
                    working,
                    f"entry order ended ({event.reason}) after partial fill "
                    f"qty={working.filled_qty}",
                    self._entry_fee(working, event),
                    now_ms,
                    out,
                )
            self.risk.start_cooldown(now_ms)
            # Order history can lag: "nothing filled" is only what was read. No new
            # entry until the position itself was read (a second entry could double it).
            self._reads.entry_read_pending = True
            return Move(
                EngineState.IDLE,
                f"entry order failed: {event.reason}",
                then=lambda: self._read_position(out),
            )
        progressed = self._close_progress(
            working, event.filled_qty, event.avg_price, event.fee, now_ms
        )
        if self._position is None:
            return self._close_ended_flat(
                f"close ended ({event.reason}) with all filled", now_ms, out
            )
        if progressed > 0:
            out.append(
                Log(
                    level="info",
                    message=f"close ended ({event.reason}) after partial fill; "
                    f"{self._position.size} left",
                )
            )
            return self._reissue_close(now_ms, out)
        backoff = self.config.close_retry_backoff_ms
        self._exit.retry_at = now_ms + backoff
        out.append(Alert(message=f"close order failed: {event.reason}; retry in {backoff} ms"))

        def read_then_check() -> Step:
            # A refused reduce-only close often means the exchange is already flat:
            # read it now rather than retrying blind until the next reconcile.
            out.append(RequestPosition(symbol=working.intent.symbol))
            return self._kill_switch(now_ms, out)

        return Move(
            EngineState.POSITION_OPEN,
            f"close failed: {event.reason}; retry in {backoff} ms",
            then=read_then_check,
        )

    def _open_from_entry(
        self, working: Working, cause: str, entry_fee: Decimal, now_ms: int, out: list[Command]
    ) -> Step:
        asked = self._protection.sent  # a stop asked for during partial fills still stands
        self._set_position(
            Position(
                side=working.intent.side,
                size=working.filled_qty,
                entry_price=working.avg_price,
                opened_ms=now_ms,
                entry_fee=entry_fee,
            )
        )
        self._protection.sent = asked

        def protect_and_watch() -> Step:
            assert self._symbol is not None
            self._protect(out)
            out.append(RequestPosition(symbol=self._symbol))
            return self._check_exits(now_ms, out)

        return Move(EngineState.POSITION_OPEN, cause, then=protect_and_watch)
