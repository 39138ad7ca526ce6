"""The trading engine: one state machine, fed events, returning commands.

Design (DESIGN section 3; the seed's four states plus Halted)
==============================================================

    | from            | event                               | to / action                        |
    |-----------------|-------------------------------------|------------------------------------|
    | Idle            | signal, risk allows                 | PlaceOrder(entry) -> OrderPending  |
    | OrderPending    | filled                              | PositionOpen (size = filled qty)   |
    | OrderPending    | failed/cancelled/timeout, filled 0  | Idle, cooldown                     |
    | OrderPending    | failed/timeout with partial fill    | PositionOpen, partial size         |
    | PositionOpen    | stop-loss / take-profit / max hold  | PlaceOrder(reduce-only close)      |
    |                 | / symbol switch / halt              |   -> ClosingPosition               |
    | ClosingPosition | filled, position now flat           | Idle                               |
    | ClosingPosition | partially filled                    | ClosingPosition, rest still        |
    |                 |                                     |   closing (re-issued if it ended)  |
    | ClosingPosition | failed (nothing filled)             | PositionOpen, retry after backoff  |
    | any             | PositionSnapshot flat while holding | Idle (closed outside) + Alert      |
    | Idle            | PositionSnapshot non-flat           | PositionOpen (adopt; stops from    |
    |                 |                                     |   its entry price)                 |
    | any             | SymbolSelected                      | Idle: switch now. Else no entries, |
    |                 |                                     |   close first, switch once flat    |
    | any             | Halt                                | Halted: cancel working entry, no   |
    |                 |                                     |   entries; flatten if configured   |
    | any             | Resync (reconnect / start-up)       | no entries until PositionSnapshot  |
    |                 |                                     |   and OpenOrders both read again   |
    | any             | book invalid or stale               | no entries until fresh valid book  |
    |                 |                                     |   (gates entries, never exits)     |
    | any             | Pause(origin) / Resume(origin)      | paused flag on / off: no entries   |
    |                 |                                     |   while on; exits, stops continue  |
    | any             | Flatten(origin)                     | pause, cancel a working entry,     |
    |                 |                                     |   close the position (reduce-only  |
    |                 |                                     |   market); not halted              |

Rules that hold in every state
------------------------------

* Market data (``BookUpdate``, ``TradeTicks``) and ``Tick`` are normal in every state:
  they feed the signal window and the book, and drive time rules (close retry, max
  hold, staleness). Data for a symbol other than the current one is ignored (seed fix
  4), with a rate-limited debug ``Log``.
* Control events (``PositionSnapshot``, ``OpenOrders``, ``SymbolSelected``, ``Halt``,
  ``Resync``) are accepted in every state; what they do depends on the state.
* Order events (``OrderAccepted``, ``OrderPartiallyFilled``, ``OrderFilled``,
  ``OrderFailed``) drive the working order in OrderPending, ClosingPosition and
  Halted. Anywhere, an order event for an order this engine issued but no longer
  tracks (it ended, or was let go after a snapshot) is a *late report*: it is logged
  and, when it carries a fill, answered with ``RequestPosition`` (the exchange
  settles the size). An order event for an id this engine never issued is a bug in
  the caller: ``EngineError``, and nothing changes.
* The exchange is the source of truth: a ``PositionSnapshot`` that disagrees wins.
  Snapshots race with fills, so while an order is working they are read carefully:

  - OrderPending: a non-flat snapshot means the entry filled at least partly: adopt
    it, cancel the rest of the entry, go to PositionOpen. A flat one is ignored (it
    may predate the fill).
  - ClosingPosition: a flat snapshot means the close is done: Idle. A non-flat one is
    ignored (it may predate the fill; the close's outcome and the position read after
    it settle the size).
  - otherwise: flat while holding -> Idle + Alert "position closed outside the bot";
    non-flat while flat -> adopt (PositionOpen); a different size/side -> adopt the
    exchange's.

* Entries need all of: Idle, a current symbol, reconciled since the last Resync/switch,
  no pending symbol switch, no order let go whose end is unconfirmed, a valid book and
  a trade, both within ``stale_ms`` of now, spread <= ``max_spread_bps``, the window
  ready and |momentum| > threshold, a size that passes the instrument's limits, and the
  risk gate. Exits need only a position and a price (book mid, or last trade when the
  book is invalid, whichever is newer): they are never gated by staleness.
* Halted is final until restart: no entry, ever. A position still open there keeps
  its stop-loss / take-profit, and is closed at once when ``flatten_on_halt``. The
  daily-loss kill switch (``risk.RiskGate``) halts the engine the same way.
* Every state change is returned as ``Transition(before, after, cause)``; skips are
  ``Log`` commands, rate-limited to once per state entry (once per interval for data
  of other symbols) so a tick stream does not flood the log.

Numbers: market data is float; everything in an order is Decimal, converted with
``instrument.to_decimal`` and rounded with the instrument's rules.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import attrs

from .instrument import qty_for_notional, round_price, round_qty, to_decimal
from .model import (
    Alert,
    BookTop,
    BookUpdate,
    CancelOrder,
    ClosedPnl,
    ClosedPnlRows,
    Command,
    EngineState,
    Event,
    Flatten,
    Halt,
    Instrument,
    Log,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderType,
    Pause,
    PersistRiskState,
    PlaceOrder,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    Resume,
    Resync,
    RiskState,
    Side,
    Subscribe,
    SymbolSelected,
    Tick,
    TimeInForce,
    TradeTicks,
    Transition,
)
from .pnl import fee_estimate, price_pnl, unrealised_net, utc_day
from .risk import RiskGate, RiskLimits
from .rules import (
    check_int,
    check_link_part,
    check_number,
    check_optional_ms,
    check_positive_decimal,
    field_validator,
)
from .signals import SignalWindow

__all__ = [
    "TRANSITIONS",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Position",
    "is_own_order_link_id",
    "make_session_tag",
]

# ------------------------------------------------------------------ the table
#
# state -> event type -> handler (a method name of Engine). The handler decides the
# next state (the design table above); a pair missing here is refused by `handle`.

_MARKET: dict[type[Any], str] = {
    BookUpdate: "_on_book",
    TradeTicks: "_on_trades",
    Tick: "_on_tick",
}
_CONTROL: dict[type[Any], str] = {
    PositionSnapshot: "_on_position",
    OpenOrders: "_on_open_orders",
    SymbolSelected: "_on_symbol",
    Halt: "_on_halt",
    Resync: "_on_resync",
    ProtectionSet: "_on_protection_set",
    ProtectionFailed: "_on_protection_failed",
    ClosedPnlRows: "_on_closed_pnl",
    # operator controls (see "operator controls" at the end of Engine)
    Pause: "_on_pause",
    Resume: "_on_resume",
    Flatten: "_on_flatten",
}
#: order events while an order of ours is working
_WORKING: dict[type[Any], str] = {
    OrderAccepted: "_on_accepted",
    OrderPartiallyFilled: "_on_partial",
    OrderFilled: "_on_filled",
    OrderFailed: "_on_failed",
}
#: order events where no order is working: only late reports of ended orders
_LATE: dict[type[Any], str] = {
    OrderAccepted: "_on_late_order",
    OrderPartiallyFilled: "_on_late_order",
    OrderFilled: "_on_late_order",
    OrderFailed: "_on_late_order",
}

TRANSITIONS: dict[EngineState, dict[type[Any], str]] = {
    EngineState.IDLE: {**_MARKET, **_CONTROL, **_LATE},
    EngineState.ORDER_PENDING: {**_MARKET, **_CONTROL, **_WORKING},
    EngineState.POSITION_OPEN: {**_MARKET, **_CONTROL, **_LATE},
    EngineState.CLOSING_POSITION: {**_MARKET, **_CONTROL, **_WORKING},
    EngineState.HALTED: {**_MARKET, **_CONTROL, **_WORKING},
}

#: a closed-PnL row this much older (ms) than the position is not its exit (clock skew)
_ROW_CLOCK_SLACK_MS = 1_000
#: room left in Bybit's 36-char orderLinkId for "-<kind><counter>" after prefix and tag
_MAX_ID_LEN = 36


class EngineError(Exception):
    """The caller broke the engine's protocol (a local bug); the engine did not change.

    Raised for an event the transition table does not accept in the current state, or
    an order event for an order id this engine never issued.
    """

    def __init__(self, state: EngineState, event: object, why: str) -> None:
        super().__init__(f"{type(event).__name__} in state {state.value}: {why}")
        self.state = state
        self.event = event


def is_own_order_link_id(link_id: str, prefix: str) -> bool:
    """True when a client order id was made by a scalper engine with this prefix.

    Used at start-up and after a reconnect to find stray orders of earlier sessions.
    """
    return link_id.startswith(prefix + "-")


def make_session_tag(now_ms: int) -> str:
    """A short tag for this run's order ids (base 36 of the start time in ms).

    The shell calls it once at start-up with the wall clock, so ids of two runs never
    collide (a collision would make Bybit report a duplicate and the retry logic treat
    another run's order as ours).
    """
    if now_ms < 0:
        raise ValueError("now_ms must be >= 0")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    n = now_ms
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out[-12:]


_link_part = field_validator(check_link_part)
_positive_decimal = field_validator(check_positive_decimal)
_positive_float = field_validator(check_number, gt=0.0)
_non_negative_float = field_validator(check_number, ge=0.0)
_optional_ms = field_validator(check_optional_ms)


def _int_ge(minimum: int) -> Any:
    return field_validator(check_int, ge=minimum)


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Everything the engine decides with (``[strategy]`` and ``[risk]``), in core units.

    Percentages are percent (``stop_loss_pct=0.5`` is 0.5 %); times are milliseconds.
    ``session_tag`` must differ between runs (see ``make_session_tag``).
    """

    session_tag: str = attrs.field(validator=_link_part)
    window: int = attrs.field(default=100, validator=_int_ge(1))
    min_ticks: int = attrs.field(default=50, validator=_int_ge(1))
    momentum_threshold: float = attrs.field(default=0.001, validator=_non_negative_float)
    max_spread_bps: float = attrs.field(default=20.0, validator=_positive_float)
    position_usd: Decimal = attrs.field(default=Decimal(1000), validator=_positive_decimal)
    stop_loss_pct: float = attrs.field(default=0.5, validator=_positive_float)
    take_profit_pct: float = attrs.field(default=1.0, validator=_positive_float)
    stale_ms: int = attrs.field(default=500, validator=_int_ge(1))
    #: a book tighter than this (bps) with both top sizes above ``liquid_min_size``
    #: takes a Market IOC entry; otherwise a PostOnly limit at the touch
    liquid_spread_bps: float = attrs.field(default=10.0, validator=_non_negative_float)
    liquid_min_size: float = attrs.field(default=100.0, validator=_non_negative_float)
    max_hold_ms: int | None = attrs.field(default=None, validator=_optional_ms)
    link_id_prefix: str = attrs.field(default="scalp", validator=_link_part)
    close_retry_backoff_ms: int = attrs.field(default=1_000, validator=_int_ge(0))
    flatten_on_halt: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    risk: RiskLimits = attrs.field(factory=RiskLimits)
    #: at most one "ignoring data of other symbol" log per symbol per interval
    ignore_log_interval_ms: int = attrs.field(default=10_000, validator=_int_ge(0))

    def __attrs_post_init__(self) -> None:
        if self.min_ticks > self.window:
            raise ValueError(f"min_ticks ({self.min_ticks}) must be <= window ({self.window})")
        if self.stop_loss_pct + self.risk.exchange_stop_margin_pct >= 100:
            # a long's exchange stop would be at or below zero
            raise ValueError(
                "stop_loss_pct + risk.exchange_stop_margin_pct must be < 100, got "
                f"{self.stop_loss_pct} + {self.risk.exchange_stop_margin_pct}"
            )

    @property
    def cooldown_ms(self) -> int:
        """No entry for this long after a failed entry or a losing close (``risk.cooldown_ms``)."""
        return self.risk.cooldown_ms


@attrs.frozen(kw_only=True)
class Position:
    """The engine's view of the open position (the exchange's wins when they differ)."""

    side: Side
    size: Decimal
    #: average entry price; None until known (e.g. a partial fill reported without price)
    entry_price: Decimal | None
    #: when the engine learnt of it (for max hold)
    opened_ms: int
    #: the entry fee of the open size not yet booked (booked pro rata as it is closed)
    entry_fee: Decimal = Decimal(0)


_Purpose = Literal["entry", "close"]


@attrs.define
class _Working:
    """The one order the engine has working, and what it has filled so far."""

    intent: OrderIntent
    purpose: _Purpose
    filled_qty: Decimal = Decimal(0)
    #: sum of price * qty of the fills so far (exact PnL of partial closes); None when
    #: a fill was reported without a price
    filled_notional: Decimal | None = Decimal(0)
    order_id: str | None = None
    #: cumulative fee the exchange reported for this order (0 = none reported)
    fee: Decimal = Decimal(0)
    #: a close: the position size when it was placed (a larger snapshot is a real extra)
    start_size: Decimal = Decimal(0)

    @property
    def link_id(self) -> str:
        return self.intent.order_link_id

    @property
    def avg_price(self) -> Decimal | None:
        if self.filled_qty <= 0 or self.filled_notional is None:
            return None
        return self.filled_notional / self.filled_qty

    def update_fill(self, cum_qty: Decimal, avg_price: Decimal | None) -> Decimal:
        """Record the cumulative fill; return the new quantity (0 if nothing new)."""
        delta = cum_qty - self.filled_qty
        if delta <= 0:
            return Decimal(0)
        if avg_price is not None:
            self.filled_notional = avg_price * cum_qty
        elif self.filled_notional is not None and self.filled_qty > 0:
            # No price given: assume the new part filled at the average so far.
            self.filled_notional = self.filled_notional / self.filled_qty * cum_qty
        else:
            self.filled_notional = None
        self.filled_qty = cum_qty
        return delta


def _fmt(value: float) -> str:
    return f"{value:.10g}"


class Engine:
    """The strategy state machine: ``handle(event, now_ms) -> list[Command]``.

    Pure: no I/O, no clock, no logging; every decision comes back as commands.

    ``restored`` is the risk state journaled by an earlier run (``PersistRiskState``):
    of the same UTC day it keeps its realised total and de-duplication list, and a
    set daily-loss latch starts the engine Halted; of another day it is dropped (the
    day is checked at the first event, the first time the engine learns the time).
    """

    def __init__(self, config: EngineConfig, *, restored: RiskState | None = None) -> None:
        self.config = config
        self.risk = RiskGate(config.risk)
        self.signals = SignalWindow(config.window, config.min_ticks)
        self._state = EngineState.IDLE
        self._symbol: str | None = None
        self._instrument: Instrument | None = None
        self._pending: tuple[str, Instrument] | None = None
        self._book: BookTop | None = None
        self._last_trade_ts: int | None = None
        self._position: Position | None = None
        self._stop: float | None = None
        self._target: float | None = None
        self._working: _Working | None = None
        #: orders let go before their end was reported: link id -> (symbol, purpose)
        self._released: dict[str, tuple[str, _Purpose]] = {}
        # Start-up is a resync: nothing is trusted until the exchange was read.
        self._need_position = True
        self._need_orders = True
        self._exit_reason: str | None = None
        self._close_retry_at: int | None = None
        self._halt_reason: str | None = None
        #: operator controls: who paused (None = not paused), who asked to flatten
        self._paused_by: str | None = None
        self._flatten_by: str | None = None
        self._counter = 0
        self._logged: set[str] = set()
        self._ignored: dict[str, tuple[int, int]] = {}
        # -- exchange-side protection of the open position
        #: the stop the exchange is known to hold (snapshot / ProtectionSet)
        self._protected: Decimal | None = None
        #: the stop last asked for (once per wanted value until an answer or a snapshot)
        self._protect_sent: Decimal | None = None
        #: why the exchange refused the stop: the position is closed at once
        self._protect_failed: str | None = None
        # -- position reads the switch and the next entry wait for
        #: a snapshot read after the last order ended showed flat on the current symbol
        self._flat_confirmed = False
        #: an entry ended with nothing filled: no entry until a position read
        self._entry_read_pending = False
        #: a snapshot during a close showed more than the close was placed for
        self._close_extra: tuple[Side, Decimal, Decimal] | None = None
        # -- the day's risk bookkeeping
        #: exchange order ids of our orders (closed-PnL rows of others are not ours)
        self._order_ids: set[str] = set()
        #: the daily-loss latch (persisted); a Halt event does not set it
        self._loss_latch = False
        self._latch_reason: str | None = None
        self._restored = restored
        self._persisted: RiskState | None = restored
        if restored is not None:
            self.risk.book.restore(restored)
            if restored.halted:
                self._loss_latch = True
                self._latch_reason = restored.halt_reason
                self._state = EngineState.HALTED
                self._halt_reason = f"daily loss latch restored: {restored.halt_reason}"

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
    def working_order_link_id(self) -> str | None:
        """Client id of the order the engine is waiting on, if any."""
        return self._working.link_id if self._working else None

    @property
    def reconciled(self) -> bool:
        """True once position and open orders were read since the last Resync/switch."""
        return not (self._need_position or self._need_orders)

    @property
    def halt_reason(self) -> str | None:
        """Why the engine halted (None while not halted)."""
        return self._halt_reason

    @property
    def paused(self) -> bool:
        """True while an operator pause (or a flatten) holds new entries."""
        return self._paused_by is not None

    @property
    def paused_by(self) -> str | None:
        """Origin of the pause in force (``tty``, ``http``, ``telegram:<id>``), or None."""
        return self._paused_by

    def owns(self, link_id: str) -> bool:
        """True when this engine instance issued ``link_id`` (the shell filters pushes with it)."""
        head = f"{self.config.link_id_prefix}-{self.config.session_tag}-"
        if not link_id.startswith(head):
            return False
        rest = link_id[len(head) :]
        return (
            len(rest) >= 2
            and rest[0] in "ex"
            and rest[1:].isdigit()
            and 1 <= int(rest[1:]) <= self._counter
        )

    # ------------------------------------------------------------ dispatch

    def handle(self, event: Event, now_ms: int) -> list[Command]:
        """Feed one event at time ``now_ms``; return the commands to carry out, in order.

        Raises ``EngineError`` (and changes nothing) for an event the table does not
        accept in the current state.
        """
        name = TRANSITIONS[self._state].get(type(event))
        if name is None:
            raise EngineError(self._state, event, "not allowed by the transition table")
        out: list[Command] = []
        self._roll_day(now_ms, out)
        getattr(self, name)(event, now_ms, out)
        self._persist_if_changed(out)
        return out

    # ------------------------------------------------------------ the UTC day

    def risk_state(self) -> RiskState:
        """What of the risk bookkeeping must survive a restart, as of now."""
        book = self.risk.book
        return RiskState(
            day=book.day if book.day is not None else -1,
            realised_net=book.realised_net,
            booked_order_ids=book.booked_order_ids,
            halted=self._loss_latch,
            halt_reason=self._latch_reason if self._loss_latch else None,
        )

    def _persist_if_changed(self, out: list[Command]) -> None:
        if self.risk.book.day is None:  # pragma: no cover - handle() always rolls first
            return
        state = self.risk_state()
        if state != self._persisted:
            self._persisted = state
            out.append(PersistRiskState(state=state))

    def _roll_day(self, now_ms: int, out: list[Command]) -> None:
        """At the first event of a UTC day: reset the realised total and the loss latch."""
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
                    out.append(Alert(message=f"halted: {self._halt_reason}"))
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
        if self._loss_latch:
            self._loss_latch = False
            self._lift_loss_halt(f"new UTC day {day}: daily-loss latch reset", out)

    def _lift_loss_halt(self, cause: str, out: list[Command]) -> None:
        """Leave a daily-loss halt (only the day's end lifts it; a Halt event stays final)."""
        if self._state is not EngineState.HALTED:  # pragma: no cover - the latch halts
            return
        self._halt_reason = None
        self._state = EngineState.IDLE if self._working is None else self._working_state()
        self._logged.clear()
        out.append(Transition(before=EngineState.HALTED, after=self._state, cause=cause))
        out.append(Alert(message=cause))
        if self._state is EngineState.IDLE and self._position is not None:
            self._goto(EngineState.POSITION_OPEN, "holding a position", out)

    def _working_state(self) -> EngineState:
        working = self._working
        assert working is not None
        return (
            EngineState.ORDER_PENDING
            if working.purpose == "entry"
            else EngineState.CLOSING_POSITION
        )

    # ------------------------------------------------------------ helpers

    def _goto(self, new: EngineState, cause: str, out: list[Command]) -> None:
        """Change state, reporting it. Halted is final: other moves are only logged."""
        before = self._state
        if before is EngineState.HALTED and new is not EngineState.HALTED:
            out.append(Log(level="info", message=f"(halted) {cause}"))
            return
        if new is before:
            return
        self._state = new
        self._logged.clear()
        out.append(Transition(before=before, after=new, cause=cause))
        if new is EngineState.IDLE and self._position is None:
            self._flatten_by = None  # operator flatten done (or its entry never filled)
        if new is EngineState.IDLE:
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
        if not self._flat_confirmed:
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
        self._counter += 1
        link_id = f"{self.config.link_id_prefix}-{self.config.session_tag}-{kind}{self._counter}"
        if len(link_id) > _MAX_ID_LEN:  # pragma: no cover - 10**10 orders in one run
            raise OverflowError("order id counter exhausted; restart with a new session tag")
        return link_id

    def _set_position(self, position: Position | None) -> None:
        old = self._position
        self._position = position
        if position is not None:
            self._flat_confirmed = False
        if position is None or old is None or old.side is not position.side:
            # a new position (or none): what the exchange held for the old one is moot
            self._protected = self._protect_sent = None
        if position is None:
            self._stop = self._target = None
            self._exit_reason = None
            self._close_retry_at = None
            self._protect_failed = None
            return
        if position.entry_price is None:
            self._stop = self._target = None
            return
        entry = float(position.entry_price)
        sl = self.config.stop_loss_pct / 100.0
        tp = self.config.take_profit_pct / 100.0
        if position.side is Side.BUY:
            self._stop, self._target = entry * (1.0 - sl), entry * (1.0 + tp)
        else:
            self._stop, self._target = entry * (1.0 + sl), entry * (1.0 - tp)

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
        """The open position's part of the day's PnL: price PnL at the mark, net of the
        estimated closing fee and of the entry fee not booked yet."""
        position = self._position
        mark = self._mark_price()
        if position is None or position.entry_price is None or mark is None:
            return Decimal(0)
        rate = self.config.risk.taker_fee_rate
        return (
            unrealised_net(
                position.side, position.entry_price, to_decimal(mark), position.size, rate
            )
            - position.entry_fee
        )

    def _fee_or_estimate(self, reported: Decimal, notional: Decimal) -> Decimal:
        """The fee the exchange reported, or an estimate at the taker rate when none was."""
        if reported != 0:
            return reported
        return fee_estimate(notional, self.config.risk.taker_fee_rate)

    # ------------------------------------------------------------ exchange-side stop

    def _exchange_stop(self, side: Side, entry: Decimal) -> Decimal | None:
        """The stop for the exchange: the engine's stop moved the margin further away.

        Rounded away from the entry (down for a long, up for a short), so it is never
        inside the engine's own stop: the bot's exit, which sees the book, acts first.
        """
        instrument = self._instrument
        if instrument is None or entry <= 0:
            return None
        cfg = self.config
        pct = (to_decimal(cfg.stop_loss_pct) + to_decimal(cfg.risk.exchange_stop_margin_pct)) / 100
        raw = entry * (1 - pct) if side is Side.BUY else entry * (1 + pct)
        stop = round_price(instrument, raw, side)
        return stop if stop > 0 else None

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
        if wanted is None or wanted == self._protected or wanted == self._protect_sent:
            return
        assert self._symbol is not None
        self._protect_sent = wanted
        out.append(
            ProtectPosition(
                symbol=self._symbol,
                stop_loss=wanted,
                trigger_by=self.config.risk.exchange_stop_trigger,
            )
        )

    def _signal_side(self) -> tuple[Side, float] | None:
        momentum = self.signals.momentum
        if momentum is None or abs(momentum) <= self.config.momentum_threshold:
            return None
        return (Side.BUY if momentum > 0 else Side.SELL), momentum

    def _switch(self, symbol: str, instrument: Instrument, out: list[Command]) -> None:
        old = self._symbol
        self._symbol = symbol
        self._instrument = instrument
        self._pending = None
        self.signals.reset()
        self._book = None
        self._last_trade_ts = None
        self._need_position = self._need_orders = True
        self._flat_confirmed = False
        self._entry_read_pending = False
        self._protected = self._protect_sent = None
        self._ignored.clear()
        out.append(Log(level="info", message=f"symbol switch {old} -> {symbol}"))
        out.append(Subscribe(symbol=symbol))
        out.append(RequestPosition(symbol=symbol))

    def _is_current(self, symbol: str, kind: str, now_ms: int, out: list[Command]) -> bool:
        """True for data of the current symbol; other symbols' data is ignored (fix 4)."""
        if symbol == self._symbol:
            return True
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
        return False

    # ------------------------------------------------------------ market data

    def _on_book(self, event: BookUpdate, now_ms: int, out: list[Command]) -> None:
        top = event.top
        if not self._is_current(top.symbol, "book", now_ms, out):
            return
        self._book = top
        self._after_market(now_ms, out, entries=True)

    def _on_trades(self, event: TradeTicks, now_ms: int, out: list[Command]) -> None:
        if not self._is_current(event.symbol, "trades", now_ms, out) or not event.trades:
            return
        self.signals.add_trades(event.trades)
        newest = max(trade.ts_ms for trade in event.trades)
        if self._last_trade_ts is None or newest > self._last_trade_ts:
            self._last_trade_ts = newest
        self._after_market(now_ms, out, entries=True)

    def _on_tick(self, _event: Tick, now_ms: int, out: list[Command]) -> None:
        self._after_market(now_ms, out, entries=False)

    def _after_market(self, now_ms: int, out: list[Command], *, entries: bool) -> None:
        state = self._state
        if self._position is not None and self._working is None:
            # PositionOpen, or Halted while still holding: exits run on every event.
            if state is EngineState.POSITION_OPEN and self._check_kill_switch(now_ms, out):
                return
            self._check_exits(now_ms, out)
        if not entries:
            return
        if self._state is EngineState.IDLE:
            self._maybe_enter(now_ms, out)
        elif self._signal_side() is not None:
            self._log_once(
                "not-idle",
                "info",
                f"Not in Idle state ({self._state.value}), skipping entry signal",
                out,
            )

    # ------------------------------------------------------------ entries

    def _entry_block(self, now_ms: int) -> tuple[str, str] | None:
        """Why no entry may be placed now (key, message), or None."""
        if self._paused_by is not None:
            return "paused", f"paused by {self._paused_by}"
        if self._pending is not None:
            return "pending", f"symbol switch to {self._pending[0]} pending"
        if not self.reconciled:
            return "reconcile", "waiting for position and open orders (reconcile before trade)"
        if self._entry_read_pending:
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

    def _maybe_enter(self, now_ms: int, out: list[Command]) -> None:
        signal = self._signal_side()
        if signal is None:
            return
        side, momentum = signal
        block = self._entry_block(now_ms)
        if block is not None:
            key, why = block
            self._log_once(key, "debug", f"entry signal skipped: {why}", out)
            return
        book = self._book
        instrument = self._instrument
        symbol = self._symbol
        assert book is not None and instrument is not None and symbol is not None
        spread = book.spread_bps
        if spread > self.config.max_spread_bps:
            return  # a wide spread is normal market state, not worth a log line
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
            return
        notional = sizing.qty * mid
        refusal = self.risk.allow_entry(notional, now_ms, self._unrealised())
        if refusal is not None:
            self._log_once("risk", "info", f"entry refused by risk: {refusal}", out)
            return
        link_id = self._next_link_id("e")
        trigger = cfg.risk.exchange_stop_trigger
        if liquid:
            # a market fills near the mid used for sizing: the stop starts from there
            intent = OrderIntent(
                symbol=symbol,
                side=side,
                order_type=OrderType.MARKET,
                qty=sizing.qty,
                time_in_force=TimeInForce.IOC,
                order_link_id=link_id,
                stop_loss=self._exchange_stop(side, mid),
                sl_trigger_by=trigger,
            )
        else:
            touch = book.bid if side is Side.BUY else book.ask
            price = round_price(instrument, to_decimal(touch), side)
            intent = OrderIntent(
                symbol=symbol,
                side=side,
                order_type=OrderType.LIMIT,
                qty=sizing.qty,
                price=price,
                time_in_force=TimeInForce.POST_ONLY,
                order_link_id=link_id,
                stop_loss=self._exchange_stop(side, price),
                sl_trigger_by=trigger,
            )
        self._working = _Working(intent=intent, purpose="entry")
        self._flat_confirmed = False
        self.risk.record_order(now_ms)
        out.append(PlaceOrder(intent=intent))
        direction = "long" if side is Side.BUY else "short"
        self._goto(
            EngineState.ORDER_PENDING,
            f"entry signal {direction} momentum={momentum:.6f} spread={spread:.2f}bps "
            f"qty={sizing.qty} {'market' if liquid else f'limit @ {intent.price}'}",
            out,
        )

    # ------------------------------------------------------------ exits

    def _check_kill_switch(self, now_ms: int, out: list[Command]) -> bool:
        """Halt when today's loss (realised + unrealised) reached the limit."""
        if self._state is EngineState.HALTED:
            return False
        unrealised = self._unrealised()
        if not self.risk.loss_limit_breached(now_ms, unrealised):
            return False
        loss = self.risk.daily_loss(now_ms, unrealised)
        reason = f"daily loss {loss} reached limit {self.config.risk.max_daily_loss_usd}"
        self._loss_latch = True
        self._latch_reason = reason
        self._halt(reason, now_ms, out)
        return True

    def _exit_condition(self, now_ms: int) -> str | None:
        position = self._position
        assert position is not None
        if self._protect_failed is not None:
            return f"exchange refused the stop: {self._protect_failed}"
        if self._state is EngineState.HALTED and self.config.flatten_on_halt:
            return f"halt: {self._halt_reason} (flatten)"
        if self._flatten_by is not None:
            return f"flatten by {self._flatten_by}"
        if self._pending is not None:
            return f"symbol switch to {self._pending[0]}"
        price = self._mark_price()
        if price is not None and self._stop is not None and self._target is not None:
            long = position.side is Side.BUY
            if (price <= self._stop) if long else (price >= self._stop):
                return (
                    f"stop-loss hit at {_fmt(price)} "
                    f"(entry {position.entry_price}, stop {_fmt(self._stop)})"
                )
            if (price >= self._target) if long else (price <= self._target):
                return (
                    f"take-profit hit at {_fmt(price)} "
                    f"(entry {position.entry_price}, target {_fmt(self._target)})"
                )
        max_hold = self.config.max_hold_ms
        if max_hold is not None and now_ms - position.opened_ms >= max_hold:
            return f"max hold {max_hold} ms reached"
        return None

    def _check_exits(self, now_ms: int, out: list[Command]) -> None:
        """With a position and no working order: decide an exit, or retry a failed close."""
        if self._exit_reason is None:
            self._exit_reason = self._exit_condition(now_ms)
        if self._exit_reason is None:
            return
        if self._close_retry_at is not None and now_ms < self._close_retry_at:
            return
        self._place_close(self._exit_reason, now_ms, out)

    def _place_close(self, reason: str, now_ms: int, out: list[Command]) -> None:
        position = self._position
        instrument = self._instrument
        symbol = self._symbol
        assert position is not None and instrument is not None and symbol is not None
        qty = min(round_qty(instrument, position.size), instrument.max_mkt_qty)
        if qty <= 0:
            self._log_once(
                "dust",
                "warning",
                f"cannot close {position.size}: below the qty step {instrument.qty_step}",
                out,
            )
            return
        intent = OrderIntent(
            symbol=symbol,
            side=position.side.opposite,
            order_type=OrderType.MARKET,
            qty=qty,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            order_link_id=self._next_link_id("x"),
        )
        self._working = _Working(intent=intent, purpose="close", start_size=position.size)
        self._close_extra = None
        self._close_retry_at = None
        self.risk.record_order(now_ms)
        out.append(PlaceOrder(intent=intent))
        if self._state is EngineState.POSITION_OPEN:
            self._goto(EngineState.CLOSING_POSITION, reason, out)
        elif self._state is EngineState.HALTED:
            out.append(Log(level="info", message=f"closing {qty} while halted ({reason})"))

    # ------------------------------------------------------------ order events

    def _working_for(self, event: Any, now_ms: int, out: list[Command]) -> _Working | None:
        """The working order this event is about, or None (then handled as late)."""
        working = self._working
        if working is not None and event.order_link_id == working.link_id:
            return working
        self._on_late_order(event, now_ms, out)
        return None

    def _on_late_order(self, event: Any, _now_ms: int, out: list[Command]) -> None:
        link_id: str = event.order_link_id
        if not self.owns(link_id):
            raise EngineError(
                self._state, event, f"order {link_id!r} was not issued by this engine"
            )
        self._note_order_id(event)
        terminal = isinstance(event, OrderFilled | OrderFailed)
        filled = getattr(event, "filled_qty", Decimal(0)) > 0
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
                self._flat_confirmed = False
                if not filled and symbol is not None:
                    out.append(RequestPosition(symbol=symbol))
            self._maybe_switch(out)

    def _note_order_id(self, event: Any) -> None:
        order_id: str = getattr(event, "order_id", "")
        if order_id:
            self._order_ids.add(order_id)

    def _on_accepted(self, event: OrderAccepted, now_ms: int, out: list[Command]) -> None:
        working = self._working_for(event, now_ms, out)
        if working is not None:
            working.order_id = event.order_id
            self._note_order_id(event)

    def _take_order_facts(self, working: _Working, event: Any) -> None:
        """Keep the order id an outcome event may carry (for its closed-PnL row)."""
        self._note_order_id(event)
        if event.order_id and working.order_id is None:
            working.order_id = event.order_id

    def _entry_fee(self, working: _Working, event: Any) -> Decimal:
        notional = working.filled_notional or Decimal(0)
        return self._fee_or_estimate(event.fee, notional)

    def _on_partial(self, event: OrderPartiallyFilled, now_ms: int, out: list[Command]) -> None:
        working = self._working_for(event, now_ms, out)
        if working is None:
            return
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
            return
        self._close_progress(working, event.filled_qty, event.avg_price, event.fee, now_ms)
        if self._position is None:  # pragma: no cover - a partial that closes all is a fill
            self._working = None
            self._close_ended_flat(working, f"close {working.link_id} filled", now_ms, out)

    def _on_filled(self, event: OrderFilled, now_ms: int, out: list[Command]) -> None:
        working = self._working_for(event, now_ms, out)
        if working is None:
            return
        self._take_order_facts(working, event)
        self._working = None
        if working.purpose == "entry":
            working.update_fill(event.filled_qty, event.avg_price)
            self._open_from_entry(
                working,
                f"order filled qty={event.filled_qty} @ {event.avg_price}",
                self._entry_fee(working, event),
                now_ms,
                out,
            )
            return
        self._close_progress(working, event.filled_qty, event.avg_price, event.fee, now_ms)
        cause = f"close filled qty={event.filled_qty} @ {event.avg_price}"
        if self._position is None:
            self._close_ended_flat(working, cause, now_ms, out)
        else:
            # A capped or raced close left some: re-issue for the rest at once.
            out.append(Log(level="info", message=f"{cause}; {self._position.size} left"))
            self._reissue_close(now_ms, out)

    def _on_failed(self, event: OrderFailed, now_ms: int, out: list[Command]) -> None:
        working = self._working_for(event, now_ms, out)
        if working is None:
            return
        self._take_order_facts(working, event)
        self._working = None
        if working.purpose == "entry":
            working.update_fill(event.filled_qty, event.avg_price)
            if working.filled_qty > 0:
                self._open_from_entry(
                    working,
                    f"entry order ended ({event.reason}) after partial fill "
                    f"qty={working.filled_qty}",
                    self._entry_fee(working, event),
                    now_ms,
                    out,
                )
                return
            self.risk.start_cooldown(now_ms)
            # Order history can lag: "nothing filled" is only what was read. No new
            # entry until the position itself was read (a second entry could double it).
            self._entry_read_pending = True
            self._goto(EngineState.IDLE, f"entry order failed: {event.reason}", out)
            assert self._symbol is not None
            out.append(RequestPosition(symbol=self._symbol))
            return
        progressed = self._close_progress(
            working, event.filled_qty, event.avg_price, event.fee, now_ms
        )
        if self._position is None:
            self._close_ended_flat(
                working, f"close ended ({event.reason}) with all filled", now_ms, out
            )
        elif progressed > 0:
            out.append(
                Log(
                    level="info",
                    message=f"close ended ({event.reason}) after partial fill; "
                    f"{self._position.size} left",
                )
            )
            self._reissue_close(now_ms, out)
        else:
            backoff = self.config.close_retry_backoff_ms
            self._close_retry_at = now_ms + backoff
            out.append(Alert(message=f"close order failed: {event.reason}; retry in {backoff} ms"))
            self._goto(
                EngineState.POSITION_OPEN,
                f"close failed: {event.reason}; retry in {backoff} ms",
                out,
            )
            # A refused reduce-only close often means the exchange is already flat:
            # read it now rather than retrying blind until the next reconcile.
            out.append(RequestPosition(symbol=working.intent.symbol))
            self._check_kill_switch(now_ms, out)

    def _open_from_entry(
        self, working: _Working, cause: str, entry_fee: Decimal, now_ms: int, out: list[Command]
    ) -> None:
        asked = self._protect_sent  # a stop asked for during partial fills still stands
        self._set_position(
            Position(
                side=working.intent.side,
                size=working.filled_qty,
                entry_price=working.avg_price,
                opened_ms=now_ms,
                entry_fee=entry_fee,
            )
        )
        self._protect_sent = asked
        self._goto(EngineState.POSITION_OPEN, cause, out)
        assert self._symbol is not None
        self._protect(out)
        out.append(RequestPosition(symbol=self._symbol))
        self._check_exits(now_ms, out)

    def _close_progress(
        self,
        working: _Working,
        cum_qty: Decimal,
        avg: Decimal | None,
        cum_fee: Decimal,
        now_ms: int,
    ) -> Decimal:
        """Apply a close's cumulative fill to the position; book its result net of fees.

        Provisional: price PnL minus the entry fee's share and the exit fee (reported
        by the exchange, else estimated); the closed-PnL row of this order replaces it.
        """
        before_notional = working.filled_notional
        delta = working.update_fill(cum_qty, avg)
        position = self._position
        if delta <= 0 or position is None:
            return Decimal(0)
        after_notional = working.filled_notional
        entry_share = position.entry_fee * min(delta, position.size) / position.size
        if (
            position.entry_price is not None
            and before_notional is not None
            and after_notional is not None
        ):
            exit_notional = after_notional - before_notional
            exit_fee = (
                cum_fee - working.fee
                if cum_fee != 0
                else fee_estimate(exit_notional, self.config.risk.taker_fee_rate)
            )
            # (exit notional - entry notional) * sign: price_pnl without dividing
            pnl = (
                price_pnl(position.side, position.entry_price * delta, exit_notional, Decimal(1))
                - entry_share
                - exit_fee
            )
            self.risk.book.book_provisional(working.order_id or "", pnl)
            if pnl < 0:
                self.risk.start_cooldown(now_ms)
        if cum_fee != 0:
            working.fee = cum_fee
        remaining = position.size - delta
        if remaining <= 0:
            self._set_position(None)
        else:
            self._position = attrs.evolve(
                position, size=remaining, entry_fee=position.entry_fee - entry_share
            )
        return delta

    def _close_ended_flat(
        self, working: _Working, cause: str, now_ms: int, out: list[Command]
    ) -> None:
        """Our close filled all the engine held; a larger size read meanwhile is closed too."""
        extra = self._close_extra
        self._close_extra = None
        if extra is not None:
            side, size, entry = extra
            out.append(
                Log(
                    level="warning",
                    message=f"{cause}, but a position read during the close showed "
                    f"{size} more: closing the rest",
                )
            )
            self._set_position(
                Position(
                    side=side,
                    size=size,
                    entry_price=entry if entry > 0 else None,
                    opened_ms=now_ms,
                    entry_fee=fee_estimate(entry * size, self.config.risk.taker_fee_rate),
                )
            )
            self._protect(out)
            self._reissue_close(now_ms, out)
            return
        self._flat_after_close(cause, now_ms, out)

    def _flat_after_close(self, cause: str, now_ms: int, out: list[Command]) -> None:
        self._set_position(None)
        symbol = self._symbol
        self._goto(EngineState.IDLE, cause, out)
        if symbol is not None:
            out.append(RequestPosition(symbol=symbol))
            out.append(RequestClosedPnl(symbol=symbol))
        self._check_kill_switch(now_ms, out)

    def _reissue_close(self, now_ms: int, out: list[Command]) -> None:
        reason = self._exit_reason or "close remaining size"
        self._place_close(reason, now_ms, out)

    # ------------------------------------------------------------ control events

    def _adopt(self, snapshot: PositionSnapshot, now_ms: int) -> Position:
        assert snapshot.side is not None
        old = self._position
        entry = snapshot.avg_price if snapshot.avg_price > 0 else None
        if old is not None and old.side is snapshot.side:
            # the entry fee follows the size (pro rata); an added part is estimated
            fee = old.entry_fee * min(snapshot.size, old.size) / old.size
            if snapshot.size > old.size and entry is not None:
                added = (snapshot.size - old.size) * entry
                fee += fee_estimate(added, self.config.risk.taker_fee_rate)
            position = attrs.evolve(
                old, size=snapshot.size, entry_price=entry or old.entry_price, entry_fee=fee
            )
        else:
            # An adopted position's entry fee is unknown: estimate it at the taker rate.
            fee = (
                fee_estimate(entry * snapshot.size, self.config.risk.taker_fee_rate)
                if entry is not None
                else Decimal(0)
            )
            position = Position(
                side=snapshot.side,
                size=snapshot.size,
                entry_price=entry,
                opened_ms=now_ms,
                entry_fee=fee,
            )
        self._set_position(position)
        return position

    def _on_position(self, event: PositionSnapshot, now_ms: int, out: list[Command]) -> None:
        if event.symbol != self._symbol:
            if not event.is_flat:
                out.append(
                    Alert(
                        message=f"position on {event.symbol} ({event.side and event.side.value} "
                        f"{event.size}) is not managed by this engine "
                        f"(current symbol {self._symbol})"
                    )
                )
            return
        self._need_position = False
        self._entry_read_pending = False
        if not event.is_flat:
            # What the exchange holds as a stop now; the once-per-value latch starts over.
            self._protected = event.stop_loss
            self._protect_sent = None
        self._apply_snapshot(event, now_ms, out)
        self._protect(out)
        if (
            event.is_flat
            and self._position is None
            and self._working is None
            and not self._released_entries()
        ):
            self._flat_confirmed = True
            self._maybe_switch(out)

    def _apply_snapshot(self, event: PositionSnapshot, now_ms: int, out: list[Command]) -> None:
        working = self._working
        held = self._position
        if working is not None and working.purpose == "entry":
            if event.is_flat:
                return  # may predate the fill: the entry's own outcome decides
            position = self._adopt(event, now_ms)
            self._release(working, out, cancel=True)
            self._goto(
                EngineState.POSITION_OPEN,
                f"position snapshot shows the entry filled: adopted {position.side.value} "
                f"{position.size} @ {position.entry_price}",
                out,
            )
            self._check_exits(now_ms, out)
            return
        if working is not None:  # a close is working
            if event.is_flat:
                self._release(working, out, cancel=False)
                self._close_extra = None
                self._flat_after_close("position snapshot flat: close complete", now_ms, out)
            elif held is not None and event.size != held.size:
                out.append(
                    Log(
                        level="debug",
                        message=f"snapshot size {event.size} during close (engine {held.size}); "
                        "waiting for the close to end",
                    )
                )
                if event.side is held.side and event.size > working.start_size:
                    # More than the close was placed for: a fill the engine missed.
                    # Not ignored: once the close ends, the rest is closed too.
                    self._close_extra = (
                        held.side,
                        event.size - working.start_size,
                        event.avg_price,
                    )
            return
        if event.is_flat:
            if held is None:
                return
            self._exited_on_exchange(
                "position closed outside the bot (the exchange stop or an outside close)",
                f"was {held.side.value} {held.size} @ {held.entry_price}",
                now_ms,
                out,
            )
            return
        if held is None:
            position = self._adopt(event, now_ms)
            cause = (
                f"adopted exchange position {position.side.value} {position.size} "
                f"@ {position.entry_price}"
            )
            out.append(Log(level="warning", message=cause))
            self._goto(EngineState.POSITION_OPEN, cause, out)
            self._check_exits(now_ms, out)
            return
        if event.side is not held.side or event.size != held.size:
            position = self._adopt(event, now_ms)
            out.append(
                Log(
                    level="warning",
                    message=f"position differs from the exchange: engine {held.side.value} "
                    f"{held.size}, exchange {position.side.value} {position.size}: adopted",
                )
            )
        elif held.entry_price is None and event.avg_price > 0:
            self._adopt(event, now_ms)

    def _exited_on_exchange(self, cause: str, detail: str, now_ms: int, out: list[Command]) -> None:
        """The position ended without our close: the exchange stop, a liquidation, a human.

        It is our position's exit: back to Idle, and its realised result is read from
        the exchange's closed-PnL rows (it counts against the daily loss).
        """
        out.append(Alert(message=f"{cause}: {detail}"))
        self._set_position(None)
        self._goto(EngineState.IDLE, cause, out)
        assert self._symbol is not None
        out.append(RequestClosedPnl(symbol=self._symbol))

    def _release(self, working: _Working, out: list[Command], *, cancel: bool) -> None:
        """Stop tracking the working order; its end is awaited as a late report."""
        self._working = None
        self._released[working.link_id] = (working.intent.symbol, working.purpose)
        if cancel:
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))

    def _on_open_orders(self, event: OpenOrders, _now_ms: int, out: list[Command]) -> None:
        listed = set(event.order_link_ids)
        working = self.working_order_link_id
        for link_id in event.order_link_ids:
            if link_id != working and is_own_order_link_id(link_id, self.config.link_id_prefix):
                out.append(
                    Log(
                        level="warning",
                        message=f"cancelling stray order {link_id} on {event.symbol}",
                    )
                )
                out.append(CancelOrder(symbol=event.symbol, order_link_id=link_id))
        ended_entry = False
        for link_id, (symbol, purpose) in list(self._released.items()):
            if symbol == event.symbol and link_id not in listed:
                del self._released[link_id]  # not open any more: it has ended
                ended_entry = ended_entry or purpose == "entry"
        if ended_entry and event.symbol == self._symbol:
            # It may have filled before it ended, and nothing said how much: only a
            # position read after its end says flat (for a switch and the next entry).
            self._flat_confirmed = False
            self._entry_read_pending = True
            out.append(RequestPosition(symbol=event.symbol))
        self._maybe_switch(out)
        if event.symbol == self._symbol:
            self._need_orders = False

    def _on_symbol(self, event: SymbolSelected, now_ms: int, out: list[Command]) -> None:
        if event.symbol == self._symbol:
            self._instrument = event.instrument
            if self._pending is not None:
                out.append(
                    Log(
                        level="info",
                        message=f"symbol switch to {self._pending[0]} dropped: "
                        f"{event.symbol} selected again",
                    )
                )
                self._pending = None
            return
        if self._state is EngineState.HALTED and self._symbol is not None:
            # (a first symbol is taken even halted: a restored latch must still see,
            # protect and close what it holds)
            out.append(
                Log(level="info", message=f"halted: symbol switch to {event.symbol} ignored")
            )
            return
        if self._symbol is None or (
            self._state is EngineState.IDLE
            and self._position is None
            and self._working is None
            and self._flat_confirmed
            and not self._released_entries()
        ):
            self._switch(event.symbol, event.instrument, out)
            return
        self._pending = (event.symbol, event.instrument)
        out.append(
            Log(
                level="info",
                message=f"symbol switch to {event.symbol} pending: "
                f"no entries, closing on {self._symbol} first",
            )
        )
        working = self._working
        if working is not None and working.purpose == "entry":
            # The entry is no longer wanted; its outcome still comes back as an event.
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))
        elif working is None and self._position is not None:
            self._check_exits(now_ms, out)
        elif working is None and self._symbol is not None:
            # Idle, but flat is only the engine's belief: a read confirms it first.
            out.append(RequestPosition(symbol=self._symbol))

    def _on_halt(self, event: Halt, now_ms: int, out: list[Command]) -> None:
        if self._state is EngineState.HALTED:
            out.append(Log(level="info", message=f"already halted; halt ({event.reason}) ignored"))
            return
        self._halt(event.reason, now_ms, out)

    def _halt(self, reason: str, now_ms: int, out: list[Command]) -> None:
        self._halt_reason = reason
        self._pending = None
        self._goto(EngineState.HALTED, f"halt: {reason}", out)
        out.append(Alert(message=f"halted: {reason}"))
        working = self._working
        if working is not None and working.purpose == "entry":
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))
        elif working is None and self._position is not None and self.config.flatten_on_halt:
            self._exit_reason = None
            self._close_retry_at = None
            self._check_exits(now_ms, out)

    def _on_resync(self, event: Resync, _now_ms: int, out: list[Command]) -> None:
        self._need_position = self._need_orders = True
        if event.market_gap:
            # trades on both sides of a gap would make one fake momentum move
            self.signals.reset()
            out.append(Log(level="info", message="market data gap: trade window cleared"))
        out.append(
            Log(
                level="info",
                message=f"resync ({event.reason}): no entries until position and open "
                "orders are read",
            )
        )
        if self._symbol is not None:
            out.append(RequestPosition(symbol=self._symbol))

    # ------------------------------------------------------------ protection

    def _on_protection_set(self, event: ProtectionSet, _now_ms: int, out: list[Command]) -> None:
        if event.symbol != self._symbol:
            out.append(Log(level="info", message=f"stop on {event.symbol} set (not traded now)"))
            return
        self._protected = event.stop_loss
        self._protect_sent = None
        out.append(
            Log(level="info", message=f"exchange stop set on {event.symbol} at {event.stop_loss}")
        )
        self._protect(out)  # the wanted stop may have moved meanwhile

    def _on_protection_failed(
        self, event: ProtectionFailed, now_ms: int, out: list[Command]
    ) -> None:
        self._protect_sent = None
        working = self._working
        filling = working is not None and working.purpose == "entry" and working.filled_qty > 0
        if event.symbol != self._symbol or (self._position is None and not filling):
            out.append(
                Log(
                    level="info",
                    message=f"stop on {event.symbol} refused ({event.reason}); "
                    "no position of ours there now",
                )
            )
            return
        self._protect_failed = event.reason
        out.append(
            Alert(
                message=f"exchange refused the stop on {event.symbol}: {event.reason}; "
                "closing the position now"
            )
        )
        if working is not None and working.purpose == "entry":
            # the rest of the entry must not fill; the position closes once it has ended
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))
        elif working is None:
            self._exit_reason = None
            self._close_retry_at = None
            self._check_exits(now_ms, out)

    # ------------------------------------------------------------ operator controls
    #
    # Pause, Resume and Flatten come from a human (tty, HTTP, Telegram): every one is
    # answered with a Log naming its origin, so the decision is in the log and journal.
    # Pause is a flag, not a state: the position's exits, the kill switch and reconcile
    # keep running; an entry order still working is cancelled. Flatten also pauses, so
    # the bot does not re-enter the moment it is flat; it is not a halt (Resume trades
    # again).

    def _on_pause(self, event: Pause, _now_ms: int, out: list[Command]) -> None:
        if self._paused_by is not None:
            out.append(
                Log(
                    level="info",
                    message=f"pause by {event.origin}: already paused by {self._paused_by}",
                )
            )
            return
        self._paused_by = event.origin
        out.append(Log(level="warning", message=f"paused by {event.origin}: no new entries"))
        working = self._working
        if working is not None and working.purpose == "entry":
            # an entry not yet filled is not an entry yet: withdraw it (a partial fill
            # comes back as a position, managed with its stops as usual)
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))

    def _on_resume(self, event: Resume, _now_ms: int, out: list[Command]) -> None:
        if self._paused_by is None:
            out.append(Log(level="info", message=f"resume by {event.origin}: not paused"))
            return
        self._paused_by = None
        self._flatten_by = None
        note = f" (still halted: {self._halt_reason})" if self._halt_reason else ""
        out.append(
            Log(level="warning", message=f"resumed by {event.origin}: entries allowed{note}")
        )

    def _on_flatten(self, event: Flatten, now_ms: int, out: list[Command]) -> None:
        self._paused_by = self._paused_by or event.origin
        working = self._working
        if self._position is None and working is None:
            out.append(
                Log(level="warning", message=f"flatten by {event.origin}: already flat; paused")
            )
            return
        self._flatten_by = event.origin
        out.append(Log(level="warning", message=f"flatten by {event.origin}: closing; paused"))
        if working is not None and working.purpose == "entry":
            # its outcome comes back; a partial fill opens a position that is then closed
            out.append(CancelOrder(symbol=working.intent.symbol, order_link_id=working.link_id))
        elif working is None:
            self._exit_reason = None
            self._close_retry_at = None
            self._check_exits(now_ms, out)

    # ------------------------------------------------------------ closed PnL

    def _on_closed_pnl(self, event: ClosedPnlRows, now_ms: int, out: list[Command]) -> None:
        day = utc_day(now_ms)
        booked = self.risk.book.book_rows(event.rows, day, frozenset(self._order_ids))
        for entry in booked:
            row = entry.row
            out.append(
                Log(
                    level="info",
                    message=f"closed PnL {row.closed_pnl} on {row.symbol} (order {row.order_id}, "
                    f"{row.exec_type}, {entry.kind}): day's realised moved by {entry.delta}",
                )
            )
        for entry in booked:
            if entry.kind == "foreign":
                self._foreign_close(entry.row, now_ms, out)
        self._check_kill_switch(now_ms, out)

    def _foreign_close(self, row: ClosedPnl, now_ms: int, out: list[Command]) -> None:
        """A close not ours on the symbol we hold: the exchange stop, a liquidation, a human."""
        position = self._position
        if row.symbol != self._symbol or position is None:
            return
        if row.updated_ms < position.opened_ms - _ROW_CLOCK_SLACK_MS:
            return  # closed before this position existed: not its exit
        assert self._symbol is not None
        if self._working is None and row.closed_size >= position.size:
            self._exited_on_exchange(
                f"position closed outside the bot by order {row.order_id} ({row.exec_type})",
                f"was {position.side.value} {position.size} @ {position.entry_price}",
                now_ms,
                out,
            )
        else:
            out.append(
                Alert(
                    message=f"order {row.order_id} not ours closed {row.closed_size} "
                    f"on {row.symbol} ({row.exec_type})"
                )
            )
        # the exchange settles what is left (and confirms flat for a switch)
        out.append(RequestPosition(symbol=self._symbol))

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
        return self._protected is not None

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
