"""The seeded synthetic market: a random walk with bursts of momentum, per symbol.

One ``random.Random(seed)`` drives everything (walk, book sizes, trade ids), and
``step(now_ms)`` is the only way time enters, so the same seed and the same sequence of
``step`` calls give the same market, byte for byte. The server calls ``step`` from a
trio task at ``rate`` steps per second (round-robin over the symbols); tests call it
directly.

Shape of the walk (log price, per second of market time): gaussian noise of
``SIGMA * vol`` per sqrt(s), a weak pull back towards the start price (so a long run
stays plausible), plus every ``BURST_EVERY_S`` or so a *burst*: a drift of 8–20 bps/s
(times ``vol``) that lasts 2–6 s. Bursts are what a momentum strategy trades:
over a 100-trade window (a few seconds of tape) they move the last price 0.1 % or more
away from the VWAP, so a bot following one symbol sees an entry signal within ~15 s.
A step that moves the touch prints one taker trade at the last level it took (size: what
it took); a step that does not prints a trade at the touch now and then.

The mark price is index-like, as Bybit's is: it follows the walk's fair price (not the
book's last trade) through an exponential average over ``MARK_TAU_S``, so a burst moves
it a little later and a wick on the book (``step_symbol(..., wick=True)``: the book and
the last price jump for one step, the fair price stays) does not move it at all. A
real price jump moves it with the price.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import deque

import attrs

from .book import SimBook, SizeFn
from .specs import SymbolSpec

__all__ = ["BOOK_DEPTH", "Market", "PublicTrade", "SymbolMarket", "backfill_candles"]

#: levels held on each side of every book (the deepest topic is orderbook.200)
BOOK_DEPTH = 200
#: noise of the log price, per sqrt(second)
SIGMA = 0.0003
#: mean seconds between momentum bursts, per symbol
BURST_EVERY_S = 12.0
#: seconds over which the log price is pulled back towards its start (weak reversion)
REVERSION_S = 1800.0
#: seconds of the rolling window behind the 24 h statistics (minutes, not a day, so the
#: scanner's ranking visibly changes during a demo run)
ROLL_S = 600.0
#: chance of a trade at the touch in a step where the price did not move through a level
TOUCH_TRADE_P = 0.35
#: trades kept per symbol for recent-trade
RECENT_TRADES = 1000
#: one-minute candles kept per symbol for kline
CANDLES_KEPT = 1440
#: seconds of the exponential average that makes the mark price from the fair price
MARK_TAU_S = 1.0


@attrs.define(slots=True)
class PublicTrade:
    """One trade on the tape (taker side), in the market's integer grid."""

    symbol: str
    tick: int
    lots: int
    side: str
    ts: int
    trade_id: str
    seq: int
    tick_direction: str


@attrs.define(slots=True)
class SymbolMarket:
    """Everything the market knows about one symbol: book, walk state, 24 h statistics."""

    spec: SymbolSpec
    book: SimBook
    tick_size: float
    level_lots: float
    logp: float
    log_start: float = 0.0
    base_turnover: float = 0.0
    drift: float = 0.0
    burst_left_s: float = 0.0
    last_tick: int = 0
    last_direction: str = "ZeroPlusTick"
    prev24h_tick: int = 0
    prev1h_tick: int = 0
    high_tick: int = 0
    low_tick: int = 0
    turnover24h: float = 0.0
    open_interest: float = 0.0
    seq: int = 0
    trades: deque[PublicTrade] = attrs.field(factory=lambda: deque(maxlen=RECENT_TRADES))
    #: minute start (ms) -> [open, high, low, close (ticks), volume, turnover]
    candles: dict[int, list[float]] = attrs.field(factory=dict)
    #: True once ``backfill_candles`` has invented the history before the start
    backfilled: bool = False
    #: the mark price in ticks (float): an average of the walk's fair price
    mark_px: float = 0.0

    @property
    def mark_tick(self) -> int:
        """Mark price on the tick grid (index-like: see the module doc)."""
        if self.mark_px > 0:
            return max(1, round(self.mark_px))
        book = self.book
        if book.has_bids and book.has_asks:
            return (book.bid_top + book.ask_top) // 2
        return self.last_tick


class Market:
    """All symbols' synthetic markets, stepped round-robin by ``step``."""

    def __init__(self, specs: tuple[SymbolSpec, ...], *, seed: int, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rng = random.Random(seed)
        self.seed = seed
        self.rate = rate
        self.symbols: dict[str, SymbolMarket] = {}
        self._order: list[str] = [spec.symbol for spec in specs]
        self._next = 0
        #: cross sequence, shared by all symbols, +1 per step
        self.seq = 1_000_000
        #: market seconds per step of one symbol
        self.dt = len(specs) / rate
        for spec in specs:
            self.symbols[spec.symbol] = self._new_symbol(spec)

    def _new_symbol(self, spec: SymbolSpec) -> SymbolMarket:
        rng = self.rng
        tick_size = float(spec.tick_size)
        start = float(spec.start_price) * (1 + rng.uniform(-0.02, 0.02))
        sm = SymbolMarket(
            spec=spec,
            book=SimBook(),
            tick_size=tick_size,
            level_lots=spec.level_qty / float(spec.qty_step),
            logp=math.log(start),
            log_start=math.log(start),
            seq=self.seq,
        )
        tick = round(start / tick_size)
        pct = rng.uniform(-0.08, 0.08)
        sm.last_tick = tick
        sm.mark_px = start / tick_size
        sm.prev24h_tick = max(1, round(tick / (1 + pct)))
        sm.prev1h_tick = max(1, round(tick * (1 + rng.uniform(-0.01, 0.01))))
        sm.high_tick = round(max(tick, sm.prev24h_tick) * (1 + rng.uniform(0.002, 0.03)))
        sm.low_tick = max(1, round(min(tick, sm.prev24h_tick) * (1 - rng.uniform(0.002, 0.03))))
        sm.turnover24h = spec.turnover24h * rng.uniform(0.7, 1.3)
        sm.base_turnover = sm.turnover24h
        sm.open_interest = sm.turnover24h / start * rng.uniform(0.2, 0.6)
        self._place_book(sm, tick)
        sm.book.changed_bids.clear()
        sm.book.changed_asks.clear()
        return sm

    # ------------------------------------------------------------------ sizes
    def _size_fn(self, sm: SymbolMarket) -> SizeFn:
        rng_random = self.rng.random
        mean = sm.level_lots

        def size() -> int:
            return max(1, int(mean * (0.15 + 1.7 * rng_random())))

        return size

    def _place_book(self, sm: SymbolMarket, mid_tick: int) -> None:
        spread = self._spread()
        bid = mid_tick - spread // 2
        size = self._size_fn(sm)
        sm.book.move_bids(bid, BOOK_DEPTH, size)
        sm.book.move_asks(bid + spread, BOOK_DEPTH, size)
        sm.book.u += 1

    def _spread(self) -> int:
        r = self.rng.random()
        return 1 if r < 0.85 else (2 if r < 0.96 else 3)

    # ------------------------------------------------------------------- steps
    def next_symbol(self) -> str:
        """The symbol the next ``step()`` will move (round-robin)."""
        return self._order[self._next]

    def step(self, now_ms: int) -> tuple[str, list[PublicTrade]]:
        """Advance the next symbol (round-robin) by one step; return it and its trades."""
        symbol = self._order[self._next]
        self._next = (self._next + 1) % len(self._order)
        return symbol, self.step_symbol(symbol, now_ms)

    def step_symbol(
        self, symbol: str, now_ms: int, jump: float = 0.0, *, wick: bool = False
    ) -> list[PublicTrade]:
        """Move one symbol by one step of the walk (plus a relative ``jump``).

        ``wick``: the jump moves only the book and the tape for this step; the fair
        price and the mark stay, and the next step brings the book back."""
        sm = self.symbols[symbol]
        rng = self.rng
        dt = self.dt
        vol = sm.spec.vol
        if sm.burst_left_s > 0:
            sm.burst_left_s -= dt
            if sm.burst_left_s <= 0:
                sm.drift = 0.0
        elif rng.random() < dt / BURST_EVERY_S:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            sm.drift = sign * rng.uniform(0.0008, 0.002) * vol
            sm.burst_left_s = rng.uniform(2.0, 6.0)
        pull = (sm.log_start - sm.logp) / REVERSION_S
        sm.logp += (sm.drift + pull) * dt + SIGMA * vol * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        # the rolling 24 h turnover drifts towards its base, faster while the symbol moves
        activity = 1.0 + 4.0 * abs(sm.drift) / 0.001
        sm.turnover24h += (sm.base_turnover * activity - sm.turnover24h) * dt / ROLL_S
        if jump and not wick:
            sm.logp += math.log1p(jump)
            sm.mark_px *= 1.0 + jump
        fair = math.exp(sm.logp) / sm.tick_size
        if sm.mark_px <= 0:
            sm.mark_px = fair
        sm.mark_px += (fair - sm.mark_px) * (1.0 - math.exp(-dt / MARK_TAU_S))
        mid = fair * (1.0 + jump) if wick else fair
        spread = self._spread()
        new_bid = max(1, math.floor(mid - spread / 2))
        new_ask = new_bid + spread
        self.seq += 1
        sm.seq = self.seq
        book = sm.book
        trades: list[PublicTrade] = []
        if book.has_asks and new_ask > book.ask_top:
            lifted = [
                (t, book.asks[t]) for t in range(book.ask_top, min(new_ask, book.ask_high + 1))
            ]
            self._tape(sm, trades, _sweep(lifted), "Buy", now_ms)
            if new_ask > book.ask_high + 1:
                # moved past the whole book (a jump): the tape follows to the new touch
                self._tape(sm, trades, [(new_ask, 1)], "Buy", now_ms)
        elif book.has_bids and new_bid < book.bid_top:
            hit = [
                (t, book.bids[t]) for t in range(book.bid_top, max(new_bid, book.bid_low - 1), -1)
            ]
            self._tape(sm, trades, _sweep(hit), "Sell", now_ms)
            if new_bid < book.bid_low - 1:
                self._tape(sm, trades, [(new_bid, 1)], "Sell", now_ms)
        size = self._size_fn(sm)
        book.move_bids(new_bid, BOOK_DEPTH, size)
        book.move_asks(new_ask, BOOK_DEPTH, size)
        if not trades and rng.random() < TOUCH_TRADE_P:
            self._touch_trade(sm, trades, now_ms)
        # a little churn inside the top of the book, as other traders come and go
        for _ in range(2):
            if rng.random() < 0.5:
                t = new_bid - int(rng.random() * 25)
                if t in book.bids:
                    book.set_bid(t, size())
            else:
                t = new_ask + int(rng.random() * 25)
                if t in book.asks:
                    book.set_ask(t, size())
        book.u += 1
        return trades

    def _touch_trade(self, sm: SymbolMarket, trades: list[PublicTrade], now_ms: int) -> None:
        """A taker trading part of the touch (either side, even odds) without moving it."""
        book = sm.book
        rng = self.rng
        buy = rng.random() < 0.5
        t = book.ask_top if buy else book.bid_top
        have = (book.asks if buy else book.bids)[t]
        lots = max(1, int(have * rng.random() * 0.5))
        if lots < have:
            (book.set_ask if buy else book.set_bid)(t, have - lots)
        self._tape(sm, trades, [(t, lots)], "Buy" if buy else "Sell", now_ms)

    def _tape(
        self,
        sm: SymbolMarket,
        trades: list[PublicTrade],
        fills: list[tuple[int, int]],
        side: str,
        now_ms: int,
    ) -> None:
        for tick, lots in fills:
            trades.append(self.record_trade(sm, tick, lots, side, now_ms, self.new_trade_id()))

    def record_trade(
        self, sm: SymbolMarket, tick: int, lots: int, side: str, now_ms: int, trade_id: str
    ) -> PublicTrade:
        """Put one trade on the tape: last price, 24 h stats, candles, recent trades."""
        if tick > sm.last_tick:
            direction = "PlusTick"
        elif tick < sm.last_tick:
            direction = "MinusTick"
        else:
            direction = (
                "ZeroPlusTick" if sm.last_direction.endswith("PlusTick") else "ZeroMinusTick"
            )
        sm.last_tick = tick
        sm.last_direction = direction
        sm.high_tick = max(sm.high_tick, tick)
        sm.low_tick = min(sm.low_tick, tick)
        qty = lots * float(sm.spec.qty_step)
        value = qty * tick * sm.tick_size
        minute = now_ms - now_ms % 60_000
        candle = sm.candles.get(minute)
        if candle is None:
            sm.candles[minute] = [tick, tick, tick, tick, qty, value]
            while len(sm.candles) > CANDLES_KEPT:
                del sm.candles[min(sm.candles)]
        else:
            candle[1] = max(candle[1], tick)
            candle[2] = min(candle[2], tick)
            candle[3] = tick
            candle[4] += qty
            candle[5] += value
        trade = PublicTrade(
            symbol=sm.spec.symbol,
            tick=tick,
            lots=lots,
            side=side,
            ts=now_ms,
            trade_id=trade_id,
            seq=sm.seq,
            tick_direction=direction,
        )
        sm.trades.append(trade)
        return trade

    def new_trade_id(self) -> str:
        """A trade id from the market's generator (deterministic per seed)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _sweep(levels: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One print for a sweep through ``levels``: at the last price, for the total size."""
    if not levels:
        return []
    return [(levels[-1][0], sum(lots for _, lots in levels))]


def backfill_candles(sm: SymbolMarket, now_ms: int, seed: int, minutes: int = 240) -> None:
    """Invent the ``minutes`` of one-minute candles before the first real one.

    A client asking for kline history gets a plausible past instead of one candle: a
    random walk (its own generator, seeded by seed and symbol, so the market's stream
    stays the same) that ends at the first real candle's open. Done once per symbol.
    """
    if sm.backfilled:
        return
    sm.backfilled = True
    first = min(sm.candles) if sm.candles else now_ms - now_ms % 60_000
    close = sm.candles[first][0] if sm.candles else float(sm.last_tick)
    rng = random.Random(f"{seed}-{sm.spec.symbol}")
    per_minute = SIGMA * sm.spec.vol * math.sqrt(60.0)
    value_per_minute = sm.base_turnover / 1440.0
    minute = first
    for _ in range(minutes):
        minute -= 60_000
        open_ = close * math.exp(-rng.gauss(0.0, per_minute))
        high = max(open_, close) * (1 + abs(rng.gauss(0.0, per_minute / 3)))
        low = min(open_, close) * (1 - abs(rng.gauss(0.0, per_minute / 3)))
        turnover = value_per_minute * rng.uniform(0.5, 1.5)
        price = (open_ + close) / 2 * sm.tick_size
        sm.candles[minute] = [
            round(open_),
            round(high),
            round(low),
            round(close),
            turnover / price,
            turnover,
        ]
        close = open_
