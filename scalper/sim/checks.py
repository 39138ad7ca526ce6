"""Bybit's refusals of order and stop parameters, as plain functions of the listed rules.

The matcher validates every create, amend and trading-stop with these before it touches
an account, so a refusal (``VenueError(10001, ...)`` with Bybit's wording) never leaves a
half-done operation behind. They read only the symbol's spec, the account's position
mode and, for a stop's side, the market's trigger price; nothing here changes state.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from .accounts import Account
from .errors import VenueError
from .market import SymbolMarket
from .params import Params, opt_decimal, opt_str
from .specs import SymbolSpec

__all__ = [
    "LINK_RE",
    "PROTECTION",
    "TRIGGERS",
    "check_position_idx",
    "check_price",
    "check_qty",
    "check_stop_price",
    "check_stop_side",
    "check_tpsl_mode",
    "order_stops",
    "protection_tick",
    "trigger_param",
    "trigger_price",
]

LINK_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
#: market orders become limit orders this far through the touch (protection price)
PROTECTION = 0.03
TRIGGERS = ("LastPrice", "MarkPrice", "IndexPrice")


def check_qty(spec: SymbolSpec, qty: Decimal, *, market: bool) -> None:
    """A quantity on the lot grid, within the symbol's min and (market) max."""
    if qty <= 0:
        raise VenueError(10001, f"params error: qty must be positive, got {qty}")
    if qty % spec.qty_step != 0:
        raise VenueError(
            10001,
            f"params error: Qty invalid: {qty} is not a multiple of qtyStep {spec.qty_step}",
        )
    if qty < spec.min_qty:
        raise VenueError(
            10001,
            f"The number of contracts below min limit allowed: qty {qty} < minOrderQty "
            f"{spec.min_qty}",
        )
    cap = spec.max_mkt_qty if market else spec.max_qty
    if qty > cap:
        which = "maxMktOrderQty" if market else "maxOrderQty"
        raise VenueError(
            10001,
            f"The number of contracts exceeds maximum limit allowed: qty {qty} > {which} {cap}",
        )


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    """A limit price: positive, on the tick grid."""
    if price <= 0:
        raise VenueError(10001, f"params error: price must be positive, got {price}")
    _check_on_grid(spec, "Price", price)


def check_stop_price(spec: SymbolSpec, name: str, value: Decimal) -> None:
    """A stop price (``name``: StopLoss / TakeProfit): not negative, on the tick grid."""
    if value < 0:
        raise VenueError(10001, f"params error: {name} must not be negative, got {value}")
    _check_on_grid(spec, name, value)


def _check_on_grid(spec: SymbolSpec, name: str, value: Decimal) -> None:
    if value % spec.tick_size != 0:
        raise VenueError(
            10001,
            f"params error: {name} invalid: {value} is not a multiple of tickSize {spec.tick_size}",
        )


def check_position_idx(account: Account, idx: int) -> None:
    """positionIdx 0 in one-way mode, 1 or 2 in hedge mode (Bybit's 10001 otherwise)."""
    if (idx == 0) == account.hedge_mode:
        raise VenueError(10001, "position idx not match position mode")


def trigger_param(params: Params, key: str, default: str = "LastPrice") -> str:
    """``slTriggerBy`` / ``tpTriggerBy`` (Bybit's default: LastPrice)."""
    value = opt_str(params, key) or default
    if value not in TRIGGERS:
        raise VenueError(10001, f"params error: {key} invalid: {value}")
    return value


def trigger_price(sm: SymbolMarket, trigger_by: str) -> Decimal:
    """The price a stop with this trigger compares against (IndexPrice: the mark's
    index-like value, the simulator has no separate index)."""
    tick = sm.last_tick if trigger_by == "LastPrice" else sm.mark_tick
    return sm.spec.price_of(tick)


def check_stop_side(name: str, value: Decimal, side: str, base: Decimal, by: str) -> None:
    """Bybit's rule: a long's stop-loss below the base price and take-profit above it;
    the reverse for a short. The message is Bybit's (prices scaled by 1e8)."""
    if value == 0:
        return
    below = (name == "StopLoss") == (side == "Buy")
    if (value < base) if below else (value > base):
        return
    word = "lower" if below else "higher"
    raise VenueError(
        10001,
        f"{name}:{_e8(value)} set for {side} position should {word} than "
        f"base_price:{_e8(base)}??{by}",
    )


def _e8(value: Decimal) -> int:
    """A price as Bybit's engine prints it in its messages: scaled by 1e8."""
    return int(value.scaleb(8))


def check_tpsl_mode(params: Params) -> None:
    """Only ``tpslMode=Full`` with market stop orders is simulated; others are refused."""
    mode = opt_str(params, "tpslMode") or "Full"
    if mode != "Full":
        raise VenueError(10001, f"params error: tpslMode {mode} is not supported here (Full)")
    for key in ("tpOrderType", "slOrderType"):
        kind = opt_str(params, key) or "Market"
        if kind != "Market":
            raise VenueError(10001, f"params error: {key} {kind} is not supported (Market)")


def order_stops(
    params: Params,
    side: str,
    order_type: str,
    price: Decimal,
    reduce_only: bool,
    sm: SymbolMarket,
) -> tuple[str, str, str, str]:
    """The TP/SL an order create carries: (takeProfit, stopLoss, tpTriggerBy,
    slTriggerBy) as strings, "" when absent. Checked like Bybit: not with
    reduceOnly, Full mode and market stop orders only, on the right side of the base
    price (the limit price; for a market order the trigger price now)."""
    tp = opt_decimal(params, "takeProfit")
    sl = opt_decimal(params, "stopLoss")
    tp = None if tp == 0 else tp
    sl = None if sl == 0 else sl
    if tp is None and sl is None:
        return "", "", "", ""
    if reduce_only:
        raise VenueError(10001, "params error: TP/SL cannot be set on a reduce-only order")
    check_tpsl_mode(params)
    tp_by = trigger_param(params, "tpTriggerBy")
    sl_by = trigger_param(params, "slTriggerBy")
    pos_side = side  # the position this order opens
    for name, value, by in (("TakeProfit", tp, tp_by), ("StopLoss", sl, sl_by)):
        if value is None:
            continue
        check_stop_price(sm.spec, name, value)
        base = price if order_type == "Limit" else trigger_price(sm, by)
        check_stop_side(name, value, pos_side, base, by)
    return (
        "" if tp is None else format(tp, "f"),
        "" if sl is None else format(sl, "f"),
        tp_by if tp is not None else "",
        sl_by if sl is not None else "",
    )


def protection_tick(sm: SymbolMarket, side: str) -> int:
    """A market order's limit: ``PROTECTION`` through the touch (the last trade if empty)."""
    book = sm.book
    if side == "Buy":
        top = book.ask_top if book.has_asks else sm.last_tick
        return math.ceil(top * (1 + PROTECTION))
    top = book.bid_top if book.has_bids else sm.last_tick
    return max(1, math.floor(top * (1 - PROTECTION)))
