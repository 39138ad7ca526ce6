"""How the engine leaves a position: the exit decided, the close placed, its fill booked.

Every way out ends here: an exit rule (stop-loss, take-profit, max hold, a refused
exchange stop, a flatten, a switch, a halt that flattens), a close that fills or
fails, the exchange ending the position without us, and the halts (a Halt event, the
daily-loss kill switch). Each step returns the ``Move`` it makes (``STAY`` when none),
for the engine's dispatch to check against its row and carry out.
"""

from __future__ import annotations

from decimal import Decimal

from .accounting import Working, apply_close_fill, extra_position
from .exits import exit_condition
from .instrument import round_qty
from .machine import EngineCore
from .model import (
    Alert,
    Command,
    EngineState,
    Log,
    OrderIntent,
    OrderType,
    PlaceOrder,
    RequestClosedPnl,
    RequestPosition,
    TimeInForce,
)
from .table import STAY, Move, Step

__all__ = ["Closing"]


class Closing(EngineCore):
    """Exit rules, closes and halts (see the module docstring)."""

    # ------------------------------------------------------------ exits

    def _kill_switch(self, now_ms: int, out: list[Command]) -> Step:
        """Halt when today's loss (realised + unrealised) reached the limit."""
        if self._state is EngineState.HALTED:
            return STAY
        unrealised = self._unrealised()
        if not self.risk.loss_limit_breached(now_ms, unrealised):
            return STAY
        loss = self.risk.daily_loss(now_ms, unrealised)
        reason = f"daily loss {loss} reached limit {self.config.risk.max_daily_loss_usd}"
        self._halting.loss_latch = True
        self._halting.latch_reason = reason
        return self._halt(reason, now_ms, out)

    def _exit_condition(self, now_ms: int) -> str | None:
        position = self._position
        assert position is not None
        halting = self._halting
        return exit_condition(
            now_ms,
            side=position.side,
            entry_price=position.entry_price,
            opened_ms=position.opened_ms,
            price=self._mark_price(),
            stop=self._stop,
            target=self._target,
            max_hold_ms=self.config.max_hold_ms,
            protection_refused=self._protection.refused,
            halt_flatten=(
                halting.reason
                if self._state is EngineState.HALTED and self.config.flatten_on_halt
                else None
            ),
            flatten_by=self._operator.flatten_by,
            switch_to=self._pending[0] if self._pending is not None else None,
        )

    def _check_exits(self, now_ms: int, out: list[Command]) -> Step:
        """With a position and no working order: decide an exit, or retry a failed close."""
        if self._exit.reason is None:
            self._exit.reason = self._exit_condition(now_ms)
        if self._exit.reason is None:
            return STAY
        if self._exit.retry_at is not None and now_ms < self._exit.retry_at:
            return STAY
        return self._place_close(self._exit.reason, now_ms, out)

    def _close_now(self, now_ms: int, out: list[Command]) -> Step:
        """Leave the position at once (a refused stop, a flatten).

        An entry still working is cancelled first: its outcome comes back as an event,
        and a partial fill is a position that the exit rule then closes. With no order
        working the exit is decided now, past any retry wait.
        """
        working = self._working
        if working is not None and working.purpose == "entry":
            out.append(working.cancel())
        elif working is None:
            self._exit.rearm()
            return self._check_exits(now_ms, out)
        return STAY

    def _place_close(self, reason: str, now_ms: int, out: list[Command]) -> Step:
        """A reduce-only market close of what is held (capped at the market-order max)."""
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
            return STAY
        intent = OrderIntent(
            symbol=symbol,
            side=position.side.opposite,
            order_type=OrderType.MARKET,
            qty=qty,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            order_link_id=self._next_link_id("x"),
        )
        self._working = Working(intent=intent, purpose="close", start_size=position.size)
        self._exit.extra = None
        self._exit.retry_at = None
        self.risk.record_order(now_ms)
        out.append(PlaceOrder(intent=intent))
        if self._state is EngineState.POSITION_OPEN:
            return Move(EngineState.CLOSING_POSITION, reason)
        if self._state is EngineState.HALTED:
            out.append(Log(level="info", message=f"closing {qty} while halted ({reason})"))
        return STAY

    # ------------------------------------------------------------ a close's outcome

    def _close_progress(
        self,
        working: Working,
        cum_qty: Decimal,
        avg: Decimal | None,
        cum_fee: Decimal,
        now_ms: int,
    ) -> Decimal:
        """Apply a close's cumulative fill to the position; book its provisional result
        (the closed-PnL row of this order replaces it)."""
        fill = apply_close_fill(
            working, self._position, cum_qty, avg, cum_fee, self.config.risk.taker_fee_rate
        )
        if fill.delta <= 0:
            return fill.delta
        if fill.pnl is not None:
            self.risk.book.book_provisional(working.order_id or "", fill.pnl)
            if fill.pnl < 0:
                self.risk.start_cooldown(now_ms)
        if fill.left is None:
            self._set_position(None)
        else:
            self._position = fill.left
        return fill.delta

    def _close_ended_flat(self, cause: str, now_ms: int, out: list[Command]) -> Step:
        """Our close filled all the engine held; a larger size read meanwhile is closed too."""
        extra = self._exit.extra
        self._exit.extra = None
        if extra is None:
            return self._flat_after_close(cause, now_ms, out)
        side, size, entry = extra
        out.append(
            Log(
                level="warning",
                message=f"{cause}, but a position read during the close showed "
                f"{size} more: closing the rest",
            )
        )
        rate = self.config.risk.taker_fee_rate
        self._set_position(extra_position(side, size, entry, now_ms, rate))
        self._protect(out)
        return self._reissue_close(now_ms, out)

    def _flat_after_close(self, cause: str, now_ms: int, out: list[Command]) -> Step:
        """Flat by our close: Idle, then read the position and the close's realised result."""
        self._set_position(None)
        symbol = self._symbol  # (entering Idle may switch symbol: the reads are of this one)

        def read_back() -> Step:
            if symbol is not None:
                out.append(RequestPosition(symbol=symbol))
                out.append(RequestClosedPnl(symbol=symbol))
            return self._kill_switch(now_ms, out)

        return Move(EngineState.IDLE, cause, then=read_back)

    def _reissue_close(self, now_ms: int, out: list[Command]) -> Step:
        reason = self._exit.reason or "close remaining size"
        return self._place_close(reason, now_ms, out)

    def _exited_on_exchange(self, cause: str, detail: str, out: list[Command]) -> Step:
        """The position ended without our close: the exchange stop, a liquidation, a human.

        It is our position's exit: back to Idle, and its realised result is read from
        the exchange's closed-PnL rows (it counts against the daily loss).
        """
        out.append(Alert(message=f"{cause}: {detail}"))
        self._set_position(None)

        def read_result() -> Step:
            assert self._symbol is not None
            out.append(RequestClosedPnl(symbol=self._symbol))
            return STAY

        return Move(EngineState.IDLE, cause, then=read_result)

    # ------------------------------------------------------------ halts

    def _halt(self, reason: str, now_ms: int, out: list[Command]) -> Step:
        """Halt: no entries; a working entry cancelled; the position closed if configured."""
        self._halting.reason = reason
        self._pending = None

        def halted() -> Step:
            out.append(Alert(message=f"halted: {reason}"))
            working = self._working
            if working is not None and working.purpose == "entry":
                out.append(working.cancel())
            elif working is None and self._position is not None and self.config.flatten_on_halt:
                self._exit.rearm()
                return self._check_exits(now_ms, out)
            return STAY

        return Move(EngineState.HALTED, f"halt: {reason}", then=halted)
