"""What the exchange's reads, the scanner, the operator and the shell's controls do.

A position read wins every disagreement, but reads race with fills, so what one means
depends on the working order (see the table in ``docs/engine.md``). The operator's
Pause, Resume and Flatten come from a human (tty, HTTP, Telegram): each is answered
with a Log naming its origin. Pause is a flag, not a state: exits, the kill switch and
reconcile keep running; an entry still working is cancelled. Flatten also pauses, so
the bot does not re-enter the moment it is flat; it is not a halt (Resume trades again).
"""

from __future__ import annotations

from functools import partial

from .closing import Closing
from .model import (
    Alert,
    CancelOrder,
    ClosedPnl,
    ClosedPnlRows,
    Command,
    EngineState,
    Flatten,
    Halt,
    Log,
    OpenOrders,
    Pause,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    RequestPosition,
    Resume,
    Resync,
    SymbolSelected,
)
from .orderids import is_own_order_link_id
from .pnl import utc_day
from .table import STAY, Move, Step, and_then

__all__ = ["ControlHandlers"]

#: a closed-PnL row this much older (ms) than the position is not its exit; a row less
#: old than this may be either (clock skew, or the last position's close read late)
ROW_CLOCK_SLACK_MS = 1_000


class ControlHandlers(Closing):
    """Handlers of position and order reads, switches, halts, resyncs, stops, controls."""

    def _on_position(self, event: PositionSnapshot, now_ms: int, out: list[Command]) -> Step:
        if event.symbol != self._symbol:
            if not event.is_flat:
                out.append(
                    Alert(
                        message=f"position on {event.symbol} ({event.side and event.side.value} "
                        f"{event.size}) is not managed by this engine "
                        f"(current symbol {self._symbol})"
                    )
                )
            return STAY
        self._reads.position_needed = False
        self._reads.entry_read_pending = False
        if not event.is_flat:
            # What the exchange holds as a stop now; the once-per-value latch starts over.
            self._protection.held = event.stop_loss
            self._protection.sent = None

        def protect_or_confirm_flat() -> Step:
            self._protect(out)
            if (
                event.is_flat
                and self._position is None
                and self._working is None
                and not self._released_entries()
            ):
                self._reads.flat_confirmed = True
                self._maybe_switch(out)
            return STAY

        return and_then(self._apply_snapshot(event, now_ms, out), protect_or_confirm_flat)

    def _apply_snapshot(self, event: PositionSnapshot, now_ms: int, out: list[Command]) -> Step:
        working = self._working
        held = self._position
        if working is not None and working.purpose == "entry":
            if event.is_flat:
                return STAY  # may predate the fill: the entry's own outcome decides
            position = self._adopt(event, now_ms)
            self._release(working, out, cancel=True)
            return Move(
                EngineState.POSITION_OPEN,
                f"position snapshot shows the entry filled: adopted {position.side.value} "
                f"{position.size} @ {position.entry_price}",
                then=lambda: self._check_exits(now_ms, out),
            )
        if working is not None:  # a close is working
            if event.is_flat:
                self._release(working, out, cancel=False)
                self._exit.extra = None
                return self._flat_after_close("position snapshot flat: close complete", now_ms, out)
            if held is not None and event.size != held.size:
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
                    self._exit.extra = (
                        held.side,
                        event.size - working.start_size,
                        event.avg_price,
                    )
            return STAY
        if event.is_flat:
            if held is None:
                return STAY
            return self._exited_on_exchange(
                "position closed outside the bot (the exchange stop or an outside close)",
                f"was {held.side.value} {held.size} @ {held.entry_price}",
                out,
            )
        if held is None:
            position = self._adopt(event, now_ms)
            cause = (
                f"adopted exchange position {position.side.value} {position.size} "
                f"@ {position.entry_price}"
            )
            out.append(Log(level="warning", message=cause))
            return Move(
                EngineState.POSITION_OPEN, cause, then=lambda: self._check_exits(now_ms, out)
            )
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
        return STAY

    def _on_open_orders(self, event: OpenOrders, _now_ms: int, out: list[Command]) -> Step:
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
            self._reads.flat_confirmed = False
            self._reads.entry_read_pending = True
            out.append(RequestPosition(symbol=event.symbol))
        self._maybe_switch(out)
        if event.symbol == self._symbol:
            self._reads.orders_needed = False
        return STAY

    def _on_symbol(self, event: SymbolSelected, now_ms: int, out: list[Command]) -> Step:
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
            return STAY
        if self._state is EngineState.HALTED and self._symbol is not None:
            # (a first symbol is taken even halted: a restored latch must still see,
            # protect and close what it holds)
            out.append(
                Log(level="info", message=f"halted: symbol switch to {event.symbol} ignored")
            )
            return STAY
        if self._symbol is None or (
            self._state is EngineState.IDLE
            and self._position is None
            and self._working is None
            and self._reads.flat_confirmed
            and not self._released_entries()
        ):
            self._switch(event.symbol, event.instrument, out)
            return STAY
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
            out.append(working.cancel())
        elif working is None and self._position is not None:
            return self._check_exits(now_ms, out)
        elif working is None and self._symbol is not None:
            # Idle, but flat is only the engine's belief: a read confirms it first.
            out.append(RequestPosition(symbol=self._symbol))
        return STAY

    def _on_halt(self, event: Halt, now_ms: int, out: list[Command]) -> Step:
        if self._state is EngineState.HALTED:
            out.append(Log(level="info", message=f"already halted; halt ({event.reason}) ignored"))
            return STAY
        return self._halt(event.reason, now_ms, out)

    def _on_resync(self, event: Resync, _now_ms: int, out: list[Command]) -> Step:
        self._reads.resync()
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
        return STAY

    # ------------------------------------------------------------ protection

    def _on_protection_set(self, event: ProtectionSet, _now_ms: int, out: list[Command]) -> Step:
        if event.symbol != self._symbol:
            out.append(Log(level="info", message=f"stop on {event.symbol} set (not traded now)"))
            return STAY
        self._protection.held = event.stop_loss
        self._protection.sent = None
        out.append(
            Log(level="info", message=f"exchange stop set on {event.symbol} at {event.stop_loss}")
        )
        self._protect(out)  # the wanted stop may have moved meanwhile
        return STAY

    def _on_protection_failed(
        self, event: ProtectionFailed, now_ms: int, out: list[Command]
    ) -> Step:
        self._protection.sent = None
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
            return STAY
        self._protection.refused = event.reason
        out.append(
            Alert(
                message=f"exchange refused the stop on {event.symbol}: {event.reason}; "
                "closing the position now"
            )
        )
        return self._close_now(now_ms, out)

    # ------------------------------------------------------------ operator controls
    #
    # Pause, Resume and Flatten come from a human (tty, HTTP, Telegram): every one is
    # answered with a Log naming its origin, so the decision is in the log and journal.
    # Pause is a flag, not a state: the position's exits, the kill switch and reconcile
    # keep running; an entry order still working is cancelled. Flatten also pauses, so
    # the bot does not re-enter the moment it is flat; it is not a halt (Resume trades
    # again).

    def _on_pause(self, event: Pause, _now_ms: int, out: list[Command]) -> Step:
        if self._operator.paused_by is not None:
            out.append(
                Log(
                    level="info",
                    message=f"pause by {event.origin}: "
                    f"already paused by {self._operator.paused_by}",
                )
            )
            return STAY
        self._operator.paused_by = event.origin
        out.append(Log(level="warning", message=f"paused by {event.origin}: no new entries"))
        working = self._working
        if working is not None and working.purpose == "entry":
            # an entry not yet filled is not an entry yet: withdraw it (a partial fill
            # comes back as a position, managed with its stops as usual)
            out.append(working.cancel())
        return STAY

    def _on_resume(self, event: Resume, _now_ms: int, out: list[Command]) -> Step:
        if self._operator.paused_by is None:
            out.append(Log(level="info", message=f"resume by {event.origin}: not paused"))
            return STAY
        self._operator.paused_by = None
        self._operator.flatten_by = None
        note = f" (still halted: {self._halting.reason})" if self._halting.reason else ""
        out.append(
            Log(level="warning", message=f"resumed by {event.origin}: entries allowed{note}")
        )
        return STAY

    def _on_flatten(self, event: Flatten, now_ms: int, out: list[Command]) -> Step:
        self._operator.paused_by = self._operator.paused_by or event.origin
        working = self._working
        if self._position is None and working is None:
            out.append(
                Log(level="warning", message=f"flatten by {event.origin}: already flat; paused")
            )
            return STAY
        self._operator.flatten_by = event.origin
        out.append(Log(level="warning", message=f"flatten by {event.origin}: closing; paused"))
        return self._close_now(now_ms, out)

    # ------------------------------------------------------------ closed PnL

    def _on_closed_pnl(self, event: ClosedPnlRows, now_ms: int, out: list[Command]) -> Step:
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
        step: Step = STAY
        for entry in booked:
            if entry.kind == "foreign":
                step = and_then(step, partial(self._foreign_close, entry.row, out))
        return and_then(step, lambda: self._kill_switch(now_ms, out))

    def _foreign_close(self, row: ClosedPnl, out: list[Command]) -> Step:
        """A close not ours on the symbol we hold: the exchange stop, a liquidation, a human."""
        position = self._position
        if row.symbol != self._symbol or position is None:
            return STAY
        if row.updated_ms < position.opened_ms - ROW_CLOCK_SLACK_MS:
            return STAY  # closed before this position existed: not its exit
        if row.updated_ms < position.opened_ms:
            # maybe the last position's close, read after this one opened: only the
            # exchange can tell, so ask it rather than drop a position it still holds
            note = f"closed PnL of order {row.order_id} predates the position: reading it"
            out.append(Log(level="info", message=note))
            return self._read_position(out)
        step: Step = STAY
        if self._working is None and row.closed_size >= position.size:
            step = self._exited_on_exchange(
                f"position closed outside the bot by order {row.order_id} ({row.exec_type})",
                f"was {position.side.value} {position.size} @ {position.entry_price}",
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
        return and_then(step, lambda: self._read_position(out))
