"""The engine's state and the steps every event handler shares.

``EngineCore`` holds what the engine knows (its state, symbol, book, position, the
one working order, the orders it let go, the orthogonal conditions of
``core.conditions``), the one place the state changes (``_set_state``: through
``_enter``, which the engine's dispatch calls with the ``Move`` a handler returned,
or the day's end lifting a daily-loss halt), and the steps the handlers
are made of: adopt the exchange's position, ask for the exchange stop, switch symbol,
settle a late order report. Leaving a position is ``core.closing``; the handlers
(``core.handlers_market``, ``core.handlers_control``) and the table that picks them
(``core.engine``) build on these.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from .accounting import (
    Position,
    Purpose,
    Working,
    adopted,
    fee_or_estimate,
    unrealised,
)
from .conditions import Exiting, Halting, Operator, Reads
from .engine_config import EngineConfig
from .exits import exchange_stop, levels
from .instrument import to_decimal
from .model import (
    Alert,
    BookTop,
    Command,
    EngineState,
    Instrument,
    Log,
    OrderAccepted,
    OrderEvent,
    OrderFailed,
    OrderFilled,
    PositionSnapshot,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    RiskState,
    Side,
    Subscribe,
    Transition,
)
from .orderids import LinkIds
from .protection import Protection
from .risk import RiskGate
from .signals import SignalWindow
from .table import STAY, Move, Step

__all__ = ["EngineCore", "EngineError"]


class EngineError(Exception):
    """The caller broke the engine's protocol (a local bug); the engine did not change.

    Raised for an event the transition table does not accept in the current state, or
    an order event for an order id this engine never issued.
    """

    def __init__(self, state: EngineState, event: object, why: str) -> None:
        super().__init__(f"{type(event).__name__} in state {state.value}: {why}")
        self.state = state
        self.event = event


class EngineCore:
    """State and shared steps of the engine (see ``core.engine.Engine``)."""

    def __init__(self, config: EngineConfig, *, restored: RiskState | None = None) -> None:
        self.config = config
        self.risk = RiskGate(config.risk)
        self.signals = SignalWindow(config.window, config.min_ticks)
        self._state = EngineState.IDLE
        self._symbol: str | None = None
        self._instrument: Instrument | None = None
        #: a symbol switch waiting for the position to be closed
        self._pending: tuple[str, Instrument] | None = None
        self._book: BookTop | None = None
        self._last_trade_ts: int | None = None
        self._position: Position | None = None
        self._stop: float | None = None
        self._target: float | None = None
        self._working: Working | None = None
        #: orders let go before their end was reported: link id -> (symbol, purpose)
        self._released: dict[str, tuple[str, Purpose]] = {}
        self._ids = LinkIds(config.link_id_prefix, config.session_tag)
        # the orthogonal conditions (see core.conditions and core.protection)
        self._reads = Reads()
        self._operator = Operator()
        self._halting = Halting()
        self._exit = Exiting()
        self._protection = Protection()
        #: log keys said once since the last state entry
        self._logged: set[str] = set()
        self._ignored: dict[str, tuple[int, int]] = {}
        #: exchange order ids of our orders (closed-PnL rows of others are not ours)
        self._order_ids: set[str] = set()
        self._restored = restored
        self._persisted: RiskState | None = restored
        #: what the persisted state was computed from (None: compute at the next event)
        self._persisted_key: tuple[int, bool, str | None] | None = None
        if restored is not None:
            self.risk.book.restore(restored)
            if restored.halted:
                self._halting.loss_latch = True
                self._halting.latch_reason = restored.halt_reason
                self._state = EngineState.HALTED
                self._halting.reason = f"daily loss latch restored: {restored.halt_reason}"

    @property
    def working_order_link_id(self) -> str | None:
        """Client id of the order the engine is waiting on, if any."""
        return self._working.link_id if self._working else None

    @property
    def reconciled(self) -> bool:
        """True once position and open orders were read since the last Resync/switch."""
        return self._reads.reconciled

    def owns(self, link_id: str) -> bool:
        """True when this engine instance issued ``link_id`` (the shell filters pushes with it)."""
        return self._ids.owns(link_id)

    def _working_state(self) -> EngineState:
        working = self._working
        assert working is not None
        return (
            EngineState.ORDER_PENDING
            if working.purpose == "entry"
            else EngineState.CLOSING_POSITION
        )

    # ------------------------------------------------------------ helpers

    def _set_state(self, new: EngineState, cause: str, out: list[Command]) -> None:
        """The one place the state changes: reported as a ``Transition`` with its cause."""
        before = self._state
        self._state = new
        self._logged.clear()
        out.append(Transition(before=before, after=new, cause=cause))

    def _enter(self, move: Move, out: list[Command]) -> None:
        """Make ``move``. Halted is final: other moves are only logged.

        Entering Idle flat ends an operator flatten (done, or its entry never filled)
        and applies a symbol switch that waited for it.
        """
        new = move.to
        before = self._state
        if before is EngineState.HALTED and new is not EngineState.HALTED:
            out.append(Log(level="info", message=f"(halted) {move.cause}"))
            return
        if new is before:
            return
        self._set_state(new, move.cause, out)
        if new is EngineState.IDLE:
            if self._position is None:
                self._operator.flatten_by = None
            self._maybe_switch(out)

    def _maybe_switch(self, out: list[Command]) -> None:
        """Apply a pending symbol switch once flat, idle and with no entry order let go.

        Why wait for let-go entries: one that still fills after the switch would leave
        a position on a symbol the engine no longer watches.
        """
        if (
            self._pending is None
            or self._state is not EngineState.IDLE
            or self._position is not None
            or self._working is not None
            or self._released_entries()
        ):
            return
        if not self._reads.flat_confirmed:
            # The engine's belief of flat is not enough: a fill it has not heard of
            # would stay behind on a symbol it no longer watches. Ask the exchange.
            if self._symbol is not None:
                self._log_once(
                    "switch-read",
                    "info",
                    f"symbol switch to {self._pending[0]} waits for a position read "
                    f"confirming flat on {self._symbol}",
                    out,
                )
            return
        symbol, instrument = self._pending
        self._switch(symbol, instrument, out)

    def _released_entries(self) -> bool:
        return any(purpose == "entry" for _, purpose in self._released.values())

    def _log_once(self, key: str, level: str, message: str, out: list[Command]) -> None:
        """Log once per state entry per ``key``."""
        if key not in self._logged:
            self._logged.add(key)
            out.append(Log(level=level, message=message))

    def _next_link_id(self, kind: Literal["e", "x"]) -> str:
        return self._ids.next(kind)

    def _set_position(self, position: Position | None) -> None:
        old = self._position
        self._position = position
        if position is not None:
            self._reads.flat_confirmed = False
        if position is None or old is None or old.side is not position.side:
            self._protection.forget()
        if position is None:
            self._stop = self._target = None
            self._exit.rearm()
            self._protection.refused = None
            return
        self._stop, self._target = levels(
            position.side,
            position.entry_price,
            self.config.stop_loss_pct,
            self.config.take_profit_pct,
        )

    def _mark_price(self) -> float | None:
        """Newest known price: valid book mid or last trade, whichever is more recent."""
        book = self._book
        last = self.signals.last_price
        if book is None or not book.valid or book.bid <= 0 or book.ask <= 0:
            return last
        if last is None or self._last_trade_ts is None or book.ts_ms >= self._last_trade_ts:
            return book.mid
        return last

    def _unrealised(self) -> Decimal:
        """The open position's part of the day's PnL at the newest price."""
        mark = self._mark_price()
        return unrealised(
            self._position,
            None if mark is None else to_decimal(mark),
            self.config.risk.taker_fee_rate,
        )

    def _fee_or_estimate(self, reported: Decimal, notional: Decimal) -> Decimal:
        return fee_or_estimate(reported, notional, self.config.risk.taker_fee_rate)

    def _exchange_stop(self, side: Side, entry: Decimal) -> Decimal | None:
        cfg = self.config
        return exchange_stop(
            self._instrument, side, entry, cfg.stop_loss_pct, cfg.risk.exchange_stop_margin_pct
        )

    def _protect(self, out: list[Command]) -> None:
        """Ask the exchange for the stop the open (or filling) position needs, once."""
        position = self._position
        working = self._working
        if position is not None and position.entry_price is not None:
            side, entry = position.side, position.entry_price
        elif position is None and working is not None and working.purpose == "entry":
            avg = working.avg_price
            if avg is None:
                return
            side, entry = working.intent.side, avg
        else:
            return
        wanted = self._exchange_stop(side, entry)
        if not self._protection.ask(wanted):
            return
        assert self._symbol is not None and wanted is not None
        out.append(
            ProtectPosition(
                symbol=self._symbol,
                stop_loss=wanted,
                trigger_by=self.config.risk.exchange_stop_trigger,
            )
        )

    def _switch(self, symbol: str, instrument: Instrument, out: list[Command]) -> None:
        old = self._symbol
        self._symbol = symbol
        self._instrument = instrument
        self._pending = None
        self.signals.reset()
        self._book = None
        self._last_trade_ts = None
        self._reads.resync()
        self._reads.flat_confirmed = False
        self._reads.entry_read_pending = False
        self._protection.forget()
        self._ignored.clear()
        out.append(Log(level="info", message=f"symbol switch {old} -> {symbol}"))
        out.append(Subscribe(symbol=symbol))
        out.append(RequestPosition(symbol=symbol))

    def _ignore_other(self, symbol: str, kind: str, now_ms: int, out: list[Command]) -> Step:
        """Data of ``symbol``, not the current one: ignored, with a rate-limited log."""
        last, count = self._ignored.get(symbol, (None, 0))
        count += 1
        if last is None or now_ms - last >= self.config.ignore_log_interval_ms:
            out.append(
                Log(
                    level="debug",
                    message=(
                        f"ignoring {kind} for {symbol} (current symbol {self._symbol}); "
                        f"{count} ignored since last report"
                    ),
                )
            )
            self._ignored[symbol] = (now_ms, 0)
        else:
            self._ignored[symbol] = (last, count)
        return STAY

    # ------------------------------------------------------------ order events

    def _read_position(self, out: list[Command]) -> Step:
        """Ask the exchange for the current symbol's position (it settles what is held)."""
        assert self._symbol is not None
        out.append(RequestPosition(symbol=self._symbol))
        return STAY

    def _working_for(self, event: OrderEvent, now_ms: int, out: list[Command]) -> Working | None:
        """The working order this event is about, or None (then handled as late)."""
        working = self._working
        if working is not None and event.order_link_id == working.link_id:
            return working
        self._on_late_order(event, now_ms, out)
        return None

    def _on_late_order(self, event: OrderEvent, _now_ms: int, out: list[Command]) -> Step:
        link_id: str = event.order_link_id
        if not self.owns(link_id):
            raise EngineError(
                self._state, event, f"order {link_id!r} was not issued by this engine"
            )
        self._note_order_id(event)
        terminal = isinstance(event, OrderFilled | OrderFailed)
        filled = not isinstance(event, OrderAccepted) and event.filled_qty > 0
        released = self._released.get(link_id)
        symbol = released[0] if released is not None else self._symbol
        out.append(
            Log(
                level="info" if filled else "debug",
                message=f"late {type(event).__name__} for {link_id} (no longer working)",
            )
        )
        if filled and symbol is not None:
            if symbol != self._symbol:  # pragma: no cover - the switch waits for let-go entries
                out.append(Alert(message=f"late fill of {link_id} on {symbol}, not traded now"))
            out.append(RequestPosition(symbol=symbol))
            if released is None or released[1] == "close":
                # a late close fill's realised result comes from the closed-PnL rows
                out.append(RequestClosedPnl(symbol=symbol))
        if terminal and released is not None:
            del self._released[link_id]
            if released[1] == "entry" and symbol == self._symbol:
                # flat is confirmed only by a read after this entry's end
                self._reads.flat_confirmed = False
                if not filled and symbol is not None:
                    out.append(RequestPosition(symbol=symbol))
            self._maybe_switch(out)
        return STAY

    def _note_order_id(self, event: OrderEvent) -> None:
        if event.order_id:
            self._order_ids.add(event.order_id)

    def _adopt(self, snapshot: PositionSnapshot, now_ms: int) -> Position:
        position = adopted(self._position, snapshot, now_ms, self.config.risk.taker_fee_rate)
        self._set_position(position)
        return position

    def _release(self, working: Working, out: list[Command], *, cancel: bool) -> None:
        """Stop tracking the working order; its end is awaited as a late report."""
        self._working = None
        self._released[working.link_id] = (working.intent.symbol, working.purpose)
        if cancel:
            out.append(working.cancel())
