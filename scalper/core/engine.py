"""The engine: the transition table and the dispatch through it.

``Engine.handle(event, now_ms)`` looks the (state, event type) pair up in ``TABLE``;
a missing pair is an ``EngineError`` and changes nothing. The row's handler runs: its
decisions are the commands it appended, and it returns its ``Step``, ``STAY`` or a
``Move`` to the next state. Only ``handle`` makes a handler's move, after checking it
is one the row declares, and then runs what the handler does in the new state (which
may move again, checked the same way); the one move no handler makes is the day's end
lifting a daily-loss halt, before the row is chosen. The rows are typed
(``core.table.on``); the table is the documentation too (``docs/engine.md``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounting import Position
from .handlers_control import ControlHandlers
from .handlers_market import MarketHandlers
from .machine import EngineError
from .model import (
    Alert,
    BookTop,
    BookUpdate,
    ClosedPnlRows,
    Command,
    EngineState,
    Event,
    Flatten,
    Halt,
    Log,
    OpenOrders,
    OrderAccepted,
    OrderEvent,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    Pause,
    PersistRiskState,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    Resume,
    Resync,
    RiskState,
    SymbolSelected,
    Tick,
    TradeTicks,
)
from .pnl import DAY_MS, utc_day
from .table import STAY, Move, Row, on

__all__ = ["TABLE", "TRANSITIONS", "Engine"]


class Engine(MarketHandlers, ControlHandlers):
    """The strategy state machine: ``handle(event, now_ms) -> list[Command]``.

    Pure: no I/O, no clock, no logging; every decision comes back as commands.

    ``restored`` is the risk state journaled by an earlier run (``PersistRiskState``):
    of the same UTC day it keeps its realised total and de-duplication list, and a
    set daily-loss latch starts the engine Halted; of another day it is dropped (the
    day is checked at the first event, the first time the engine learns the time).
    """

    # ------------------------------------------------------------ public view

    @property
    def state(self) -> EngineState:
        """Current state."""
        return self._state

    @property
    def symbol(self) -> str | None:
        """The symbol being traded (None until the first SymbolSelected)."""
        return self._symbol

    @property
    def pending_symbol(self) -> str | None:
        """A symbol switch waiting for the position to be closed."""
        return self._pending[0] if self._pending else None

    @property
    def position(self) -> Position | None:
        """The open position, or None when flat."""
        return self._position

    @property
    def halt_reason(self) -> str | None:
        """Why the engine halted (None while not halted)."""
        return self._halting.reason

    @property
    def paused(self) -> bool:
        """True while an operator pause (or a flatten) holds new entries."""
        return self._operator.paused_by is not None

    @property
    def paused_by(self) -> str | None:
        """Origin of the pause in force (``tty``, ``http``, ``telegram:<id>``), or None."""
        return self._operator.paused_by

    # -- read-only views for the control core (status, dashboard, metrics) --------

    @property
    def book(self) -> BookTop | None:
        """The latest top of book of the current symbol (None before the first)."""
        return self._book

    @property
    def stop_on_exchange(self) -> bool | None:
        """Whether the exchange confirmed a stop on the open position (None when flat).

        True once a position read or a trading-stop reply showed the stop armed; False
        while holding without one confirmed (just filled, or refused).
        """
        if self._position is None:
            return None
        return self._protection.held is not None

    @property
    def stop_price(self) -> float | None:
        """The open position's stop-loss price (None when flat or entry unknown)."""
        return self._stop

    @property
    def target_price(self) -> float | None:
        """The open position's take-profit price (None when flat or entry unknown)."""
        return self._target

    def unrealised_pnl(self) -> Decimal:
        """Unrealised PnL of the open position at the newest price (0 when flat)."""
        return self._unrealised()

    # ------------------------------------------------------------ dispatch

    def handle(self, event: Event, now_ms: int) -> list[Command]:
        """Feed one event at time ``now_ms``; return the commands to carry out, in order.

        Raises ``EngineError`` (and changes nothing) for an event the table does not
        accept in the current state.
        """
        state = self._state
        row = TABLE[state].get(type(event))
        if row is None:
            raise EngineError(state, event, "not allowed by the transition table")
        out: list[Command] = []
        risk_book = self.risk.book
        if self._restored is not None or risk_book.day != now_ms // DAY_MS:
            self._roll_day(now_ms, out)  # the first event of a UTC day: one a day
            if self._state is not state:  # the day's end lifted a daily-loss halt: its row
                row = TABLE[self._state][type(event)]  # (every state has a row of each event)
        step = row.handler(self, event, now_ms, out)
        while step is not STAY:
            self._check_declared(row, event, step)
            self._enter(step, out)
            step = step.then() if step.then is not None else STAY
        # The risk state is journaled when it changed: only the day book (which counts
        # its changes) and the loss latch change it, so most events compare three values.
        halting = self._halting
        key = (risk_book.version, halting.loss_latch, halting.latch_reason)
        if key != self._persisted_key:
            self._persist(key, out)
        return out

    def _check_declared(self, row: Row, event: Event, move: Move) -> None:
        """A move the row does not declare is an engine bug: the table would be wrong."""
        before = self._state
        if before is HALTED or move.to is before or move.to in row.to:
            return  # (in Halted a move is only logged: Halted is final)
        event_name, moved = type(event).__name__, f"{before.value} -> {move.to.value}"
        raise AssertionError(f"{event_name} moved {moved}, which the table does not declare")

    # ------------------------------------------------------------ the UTC day

    def risk_state(self) -> RiskState:
        """What of the risk bookkeeping must survive a restart, as of now."""
        book = self.risk.book
        return RiskState(
            day=book.day if book.day is not None else -1,
            realised_net=book.realised_net,
            booked_order_ids=book.booked_order_ids,
            halted=self._halting.loss_latch,
            halt_reason=self._halting.latch_reason if self._halting.loss_latch else None,
        )

    def _persist(self, key: tuple[int, bool, str | None], out: list[Command]) -> None:
        """Journal the risk state (``key``: what it is computed from changed)."""
        if self.risk.book.day is None:  # pragma: no cover - handle() always rolls first
            return
        self._persisted_key = key
        state = self.risk_state()
        if state != self._persisted:
            self._persisted = state
            out.append(PersistRiskState(state=state))

    def _roll_day(self, now_ms: int, out: list[Command]) -> None:
        """At the first event of a UTC day (or of a restored run): reset the realised
        total and the loss latch. ``handle`` calls it only then."""
        restored, self._restored = self._restored, None
        day = utc_day(now_ms)
        if restored is not None:
            if restored.day == day:
                out.append(
                    Log(
                        level="info",
                        message=f"risk state of today restored: realised {restored.realised_net}, "
                        f"{len(restored.booked_order_ids)} closes booked"
                        + (", daily-loss latch set: halted" if restored.halted else ""),
                    )
                )
                if restored.halted:
                    out.append(Alert(message=f"halted: {self._halting.reason}"))
                return
            out.append(
                Log(
                    level="info",
                    message=f"risk state of UTC day {restored.day} dropped (today is day {day})",
                )
            )
        first = self.risk.book.day is None
        if not self.risk.roll_day(now_ms):
            if first:
                self._persisted = self.risk_state()  # a fresh day: nothing to journal yet
            return
        if restored is None:
            out.append(Log(level="info", message=f"new UTC day {day}: realised PnL reset to 0"))
        if self._halting.loss_latch:
            self._halting.loss_latch = False
            self._lift_loss_halt(f"new UTC day {day}: daily-loss latch reset", out)

    def _lift_loss_halt(self, cause: str, out: list[Command]) -> None:
        """Leave a daily-loss halt (only the day's end lifts it; a Halt event stays final)."""
        if self._state is not EngineState.HALTED:  # pragma: no cover - the latch halts
            return
        self._halting.reason = None
        after = EngineState.IDLE if self._working is None else self._working_state()
        self._set_state(after, cause, out)
        out.append(Alert(message=cause))
        if after is EngineState.IDLE and self._position is not None:
            self._set_state(EngineState.POSITION_OPEN, "holding a position", out)


IDLE = EngineState.IDLE
PENDING = EngineState.ORDER_PENDING
OPEN = EngineState.POSITION_OPEN
CLOSING = EngineState.CLOSING_POSITION
HALTED = EngineState.HALTED
_ALL = tuple(EngineState)


def _rows(state: EngineState) -> dict[type[Any], Row]:
    """The row of every event type ``state`` accepts."""
    working = state in (PENDING, CLOSING, HALTED)
    halted = state is HALTED

    def to(*targets: EngineState) -> tuple[EngineState, ...]:
        return () if halted else targets  # Halted is final (only a new UTC day lifts it)

    def at(table: dict[EngineState, tuple[EngineState, ...]]) -> tuple[EngineState, ...]:
        return to(*table.get(state, ()))

    exits = at({OPEN: (CLOSING, HALTED)})
    rows = [
        on(
            BookUpdate,
            Engine._on_book,
            "book of the current symbol: exits, then an entry when Idle and every gate allows",
            *at({IDLE: (PENDING,), OPEN: (CLOSING, HALTED)}),
        ),
        on(
            TradeTicks,
            Engine._on_trades,
            "trades into the signal window: exits, then an entry when Idle and every gate allows",
            *at({IDLE: (PENDING,), OPEN: (CLOSING, HALTED)}),
        ),
        on(
            Tick,
            Engine._on_tick,
            "time rules: stop-loss, take-profit, max hold, kill switch, a failed close's retry",
            *exits,
        ),
        on(
            PositionSnapshot,
            Engine._on_position,
            "the exchange's position wins (read with "
            "care while an order works); adopt, closed outside, or confirmed flat",
            *at(
                {
                    IDLE: (OPEN, CLOSING),
                    PENDING: (OPEN, CLOSING),
                    OPEN: (IDLE, CLOSING),
                    CLOSING: (IDLE, HALTED),
                }
            ),
        ),
        on(
            OpenOrders,
            Engine._on_open_orders,
            "cancel stray orders of ours; let-go orders not listed have ended",
        ),
        on(
            SymbolSelected,
            Engine._on_symbol,
            "switch now when flat and confirmed, else no entries, close first, switch once flat",
            *at({OPEN: (CLOSING,)}),
        ),
        on(
            Halt,
            Engine._on_halt,
            "halt: cancel a working entry, no entries; flatten if configured",
            *to(HALTED),
        ),
        on(
            Resync,
            Engine._on_resync,
            "no entries until position and open orders are read "
            "again (a market gap clears the trade window)",
        ),
        on(ProtectionSet, Engine._on_protection_set, "the exchange holds the stop"),
        on(
            ProtectionFailed,
            Engine._on_protection_failed,
            "the exchange refused the stop: close the position now",
            *at({OPEN: (CLOSING,)}),
        ),
        on(
            ClosedPnlRows,
            Engine._on_closed_pnl,
            "book the day's closed PnL; a close not ours ends the position; kill switch",
            *at(
                {IDLE: (HALTED,), PENDING: (HALTED,), OPEN: (IDLE, HALTED), CLOSING: (IDLE, HALTED)}
            ),
        ),
        on(
            Pause,
            Engine._on_pause,
            "paused flag on: no entries, a working entry cancelled; exits and stops continue",
        ),
        on(Resume, Engine._on_resume, "paused flag off (and a flatten forgotten)"),
        on(
            Flatten,
            Engine._on_flatten,
            "pause, cancel a working entry, close the position (reduce-only market); not a halt",
            *at({OPEN: (CLOSING,)}),
        ),
    ]
    if working:
        rows += [
            on(OrderAccepted, Engine._on_accepted, "the working order's exchange id noted"),
            on(
                OrderPartiallyFilled,
                Engine._on_partial,
                "an entry's partial fill is protected; a close's reduces the position",
                *at({CLOSING: (IDLE, HALTED)}),
            ),
            on(
                OrderFilled,
                Engine._on_filled,
                "an entry opens the position; a close ends it (or is re-issued for the rest)",
                *at({PENDING: (OPEN, CLOSING), CLOSING: (IDLE, HALTED)}),
            ),
            on(
                OrderFailed,
                Engine._on_failed,
                "an entry with nothing filled: Idle, cooldown; "
                "partly filled: the position; a close: retry after a backoff",
                *at({PENDING: (IDLE, OPEN, CLOSING), CLOSING: (IDLE, OPEN, HALTED)}),
            ),
        ]
    else:
        order_events: tuple[type[OrderEvent], ...] = (
            OrderAccepted,
            OrderPartiallyFilled,
            OrderFilled,
            OrderFailed,
        )
        rows += [
            on(
                kind,
                Engine._on_late_order,
                "a late report of an order that ended or was let "
                "go: a fill is settled by a position read",
            )
            for kind in order_events
        ]
    return {row.event: row for row in rows}


#: (state, event type) -> row: the engine's transition table
TABLE: dict[EngineState, dict[type[Any], Row]] = {state: _rows(state) for state in _ALL}

#: state -> event type -> handler name (the table's names, for callers that look up methods)
TRANSITIONS: dict[EngineState, dict[type[Any], str]] = {
    state: {event: row.handler.__name__ for event, row in rows.items()}
    for state, rows in TABLE.items()
}
