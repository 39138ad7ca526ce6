"""Queue position of our resting orders in a backtest, from the recorded book and tape.

A PostOnly order joins the back of its level: it has ``ahead`` = the recorded size at
its price when it arrived. Recorded trades at its price eat ``ahead`` first; only the
volume beyond reaches the matcher (``fill_resting``), which then fills the order as
maker. A trade *through* the price, or the opposite touch moving onto it, fills it
whole (the matcher's rule). The level shrinking below ``ahead`` (cancels ahead of us)
shortens the queue: ``ahead = min(ahead, size)``. Without this a backtest would fill
every resting order at the first print at its price, which no exchange does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Final

import attrs

from scalper.core.model import Side, Trade
from scalper.sim.market import PublicTrade
from scalper.sim.matching import Matcher

from .mirror import BookMirror
from .orders import Working

__all__ = ["QueuePosition"]

#: levels of each side read when checking whether a queue ahead of us shrank
_QUEUE_SCAN_DEPTH: Final = 25


@attrs.define(eq=False)
class QueuePosition:
    """Decides what of the recorded tape reaches our resting orders."""

    matcher: Matcher
    symbol: str
    mirror: BookMirror
    #: our orders not ended yet, by orderLinkId (shared with the venue)
    working: dict[str, Working]
    qty_step: Decimal
    #: the matcher's end-of-operation hook (``fill_resting`` leaves it to its caller)
    flushed: Callable[[int], None]

    def fill_from_tape(self, trades: Sequence[Trade], now_ms: int) -> None:
        """Recorded trades eat the queue ahead of each resting order of ours first; only
        the volume beyond it (or a trade through the price) reaches the matcher."""
        mirror, symbol = self.mirror, self.symbol
        tape = [
            PublicTrade(
                symbol=symbol,
                tick=round(t.price / mirror.tick),
                lots=max(1, round(t.qty / mirror.step)),
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
        entries = list(resting[symbol].items())
        step = self.qty_step
        try:
            for order_id, (account, order) in entries:
                working = self.working.get(order.order_link_id)
                if not order.is_open or working is None:
                    continue
                limit = mirror.ticks(order.price)
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
                resting[symbol] = {order_id: (account, order)}
                self.matcher.fill_resting(symbol, reach, now_ms)
                self.flushed(now_ms)  # fill_resting leaves the push to its caller
                took = int((order.cum_qty - before) / step)
                for i in at_price:  # what this order took at its price is gone for the next
                    used = min(took, left[i])
                    left[i] -= used
                    took -= used
        finally:
            resting[symbol] = {k: v for k, v in entries if v[1].is_open}

    def shorten(self) -> None:
        """A level smaller than the queue we assumed ahead of us: those ahead cancelled."""
        sides: dict[str, dict[int, int]] = {}
        for _order_id, (_account, order) in self.matcher.resting[self.symbol].items():
            working = self.working.get(order.order_link_id)
            if working is None or working.ahead == 0:
                continue
            key = order.side
            if key not in sides:
                side = Side.BUY if key == "Buy" else Side.SELL
                sides[key] = dict(self.mirror.levels(side, _QUEUE_SCAN_DEPTH))
            levels = sides[key]
            tick = self.mirror.ticks(order.price)
            deepest = min(levels) if key == "Buy" and levels else max(levels, default=tick)
            inside = tick >= deepest if key == "Buy" else tick <= deepest
            if inside:  # within the levels read: absent means nobody is left ahead
                working.ahead = min(working.ahead, levels.get(tick, 0))
