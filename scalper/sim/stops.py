"""Protective stops of positions (``tpslMode=Full``): armed, moved, fired.

A ``stopLoss`` / ``takeProfit`` on an opening order is armed on the position when the
order fills (``MatchingCore._fill``); ``set_trading_stop`` arms, moves ("0": removes)
them later. A long's stop-loss must lie below the trigger base price (mark or last, per
``slTriggerBy``) and its take-profit above, the reverse for a short (10001 naming side
and base price); a flat position is refused; the same values again answer 34040. On
every market step ``check_stops`` fires a stop whose trigger price was crossed: a
reduce-only, close-on-trigger market order of the whole position with orderLinkId "",
``stopOrderType`` StopLoss/TakeProfit and ``createType`` CreateByStopLoss /
CreateByTakeProfit. Whatever closes a position cancels its stops.

Kept apart from the order operations (``sim.matching``) because stops are the
position's, not an order's: they are driven by the market moving, not by a request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounts import Account, Order, Position
from .checks import (
    check_position_idx,
    check_stop_price,
    check_stop_side,
    check_tpsl_mode,
    protection_tick,
    trigger_param,
    trigger_price,
)
from .errors import VenueError
from .fills import MatchingCore
from .params import opt_decimal, opt_int, req_str

__all__ = ["ProtectiveStops"]


class ProtectiveStops(MatchingCore):
    """The matcher's stop rules: ``set_trading_stop`` and ``check_stops``."""

    def set_trading_stop(self, account: Account, params: dict[str, Any]) -> None:
        """``POST /v5/position/trading-stop``: arm, move or remove ("0") the Full-mode
        stop-loss / take-profit of a position (34040 when nothing changes)."""
        spec = self._spec(req_str(params, "symbol"))
        if "positionIdx" not in params:
            raise VenueError(10001, "params error: missing required parameter positionIdx")
        idx = opt_int(params, "positionIdx", 0, 0, 2)
        check_position_idx(account, idx)
        check_tpsl_mode(params)
        trailing = opt_decimal(params, "trailingStop")
        if trailing:
            raise VenueError(10001, "params error: trailingStop is not supported by the simulator")
        pos = account.position(spec.symbol)
        held = pos.size != 0 and (not account.hedge_mode or (pos.size > 0) == (idx == 1))
        if not held:
            raise VenueError(10001, "can not set tp/sl/ts for zero position")
        sl = opt_decimal(params, "stopLoss")
        tp = opt_decimal(params, "takeProfit")
        sl_by = trigger_param(params, "slTriggerBy", pos.sl_trigger_by)
        tp_by = trigger_param(params, "tpTriggerBy", pos.tp_trigger_by)
        new_sl = pos.stop_loss if sl is None else sl
        new_tp = pos.take_profit if tp is None else tp
        sm = self.sm(spec.symbol)
        side = pos.side
        for name, value, given, by in (
            ("StopLoss", new_sl, sl, sl_by),
            ("TakeProfit", new_tp, tp, tp_by),
        ):
            if given is None or given == 0:
                continue
            check_stop_price(spec, name, given)
            check_stop_side(name, value, side, trigger_price(sm, by), by)
        if (new_sl, new_tp, sl_by, tp_by) == (
            pos.stop_loss,
            pos.take_profit,
            pos.sl_trigger_by,
            pos.tp_trigger_by,
        ):
            raise VenueError(34040, "not modified")
        pos.stop_loss, pos.take_profit = new_sl, new_tp
        pos.sl_trigger_by, pos.tp_trigger_by = sl_by, tp_by
        now = self.now_ms()
        pos.updated_ms = now
        pos.seq = self.market.seq
        self._batch(account).positions.add(spec.symbol)
        self._flush(now)

    def check_stops(self, symbol: str, now: int) -> None:
        """Fire every armed stop on ``symbol`` whose trigger price has been crossed."""
        sm = self.sm(symbol)
        for account in self.accounts.values():
            pos = account.positions.get(symbol)
            if pos is None or pos.size == 0 or not (pos.stop_loss or pos.take_profit):
                continue
            long = pos.size > 0
            fired: tuple[str, Decimal, str] | None = None
            if pos.stop_loss:
                px = trigger_price(sm, pos.sl_trigger_by)
                if (px <= pos.stop_loss) if long else (px >= pos.stop_loss):
                    fired = ("StopLoss", pos.stop_loss, pos.sl_trigger_by)
            if fired is None and pos.take_profit:
                px = trigger_price(sm, pos.tp_trigger_by)
                if (px >= pos.take_profit) if long else (px <= pos.take_profit):
                    fired = ("TakeProfit", pos.take_profit, pos.tp_trigger_by)
            if fired is not None:
                self._fire(account, pos, *fired, now=now)

    def _fire(
        self, account: Account, pos: Position, kind: str, trigger: Decimal, by: str, *, now: int
    ) -> None:
        """A triggered stop: a reduce-only market close of the whole position."""
        spec = self.specs[pos.symbol]
        sm = self.sm(pos.symbol)
        long = pos.size > 0
        side = "Sell" if long else "Buy"
        tick = protection_tick(sm, side)
        # falling through a long's stop-loss (or a short's take-profit) is direction 2
        falling = long == (kind == "StopLoss")
        order = Order(
            order_id=self._new_id(),
            order_link_id="",
            symbol=pos.symbol,
            side=side,
            order_type="Market",
            time_in_force="IOC",
            price=spec.price_of(tick),
            qty=abs(pos.size),
            reduce_only=True,
            close_on_trigger=True,
            created_ms=now,
            updated_ms=now,
            last_price_on_created=spec.price_str(sm.last_tick),
            stop_order_type=kind,
            create_type="CreateByStopLoss" if kind == "StopLoss" else "CreateByTakeProfit",
            trigger_price=trigger,
            trigger_by=by,
            trigger_direction=2 if falling else 1,
            position_idx=(1 if long else 2) if account.hedge_mode else 0,
        )
        pos.clear_stops()  # Full mode: the other stop is cancelled with this one
        self._accept(account, order)
        self._take(account, order, tick, now)
        if order.is_open:
            # the book was too thin for the whole close: the rest at the mark (the
            # simulator's stand-in for Bybit's engine working the close through)
            self._fill(
                account,
                order,
                self.mark(pos.symbol),
                order.qty - order.cum_qty,
                maker=False,
                now=now,
            )
