"""When the open position must be closed, and where its stops are.

The engine's own exits (stop-loss, take-profit, max hold) watch the newest price; the
operator's flatten, a halt with ``flatten_on_halt``, a pending symbol switch and a
refused exchange stop close at once. The exchange-side stop sits a margin beyond the
engine's stop, so the engine's exit, which sees the book, acts first.
"""

from __future__ import annotations

from decimal import Decimal

from .instrument import round_price, to_decimal
from .model import Instrument, Side

__all__ = ["exchange_stop", "exit_condition", "levels"]


def levels(
    side: Side, entry: Decimal | None, stop_loss_pct: float, take_profit_pct: float
) -> tuple[float | None, float | None]:
    """(stop, target) prices of a position entered at ``entry`` (None when unknown)."""
    if entry is None:
        return None, None
    price = float(entry)
    sl = stop_loss_pct / 100.0
    tp = take_profit_pct / 100.0
    if side is Side.BUY:
        return price * (1.0 - sl), price * (1.0 + tp)
    return price * (1.0 + sl), price * (1.0 - tp)


def exchange_stop(
    instrument: Instrument | None,
    side: Side,
    entry: Decimal,
    stop_loss_pct: float,
    margin_pct: float,
) -> Decimal | None:
    """The stop for the exchange: the engine's stop moved the margin further away.

    Rounded away from the entry (down for a long, up for a short), so it is never
    inside the engine's own stop.
    """
    if instrument is None or entry <= 0:
        return None
    pct = (to_decimal(stop_loss_pct) + to_decimal(margin_pct)) / 100
    raw = entry * (1 - pct) if side is Side.BUY else entry * (1 + pct)
    stop = round_price(instrument, raw, side)
    return stop if stop > 0 else None


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def exit_condition(
    now_ms: int,
    *,
    side: Side,
    entry_price: Decimal | None,
    opened_ms: int,
    price: float | None,
    stop: float | None,
    target: float | None,
    max_hold_ms: int | None,
    protection_refused: str | None,
    halt_flatten: str | None,
    flatten_by: str | None,
    switch_to: str | None,
) -> str | None:
    """Why the position must be closed now, or None; the first reason wins.

    ``protection_refused``: why the exchange refused the position's stop;
    ``halt_flatten``: why the engine halted, when it flattens on a halt;
    ``flatten_by``: who asked to flatten; ``switch_to``: a pending switch's symbol.
    (Plain arguments, not a value object: this runs on every event while holding.)
    """
    if protection_refused is not None:
        return f"exchange refused the stop: {protection_refused}"
    if halt_flatten is not None:
        return f"halt: {halt_flatten} (flatten)"
    if flatten_by is not None:
        return f"flatten by {flatten_by}"
    if switch_to is not None:
        return f"symbol switch to {switch_to}"
    if price is not None and stop is not None and target is not None:
        long = side is Side.BUY
        if (price <= stop) if long else (price >= stop):
            return f"stop-loss hit at {_fmt(price)} (entry {entry_price}, stop {_fmt(stop)})"
        if (price >= target) if long else (price <= target):
            return f"take-profit hit at {_fmt(price)} (entry {entry_price}, target {_fmt(target)})"
    if max_hold_ms is not None and now_ms - opened_ms >= max_hold_ms:
        return f"max hold {max_hold_ms} ms reached"
    return None
