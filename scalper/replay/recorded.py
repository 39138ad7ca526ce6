"""The backtest venue's parts: its settings, its fills, and the recorded book mirror.

``RecordedBook`` is a ``sim.book.SimBook`` whose levels come from the replayed
``core.book.OrderBook``: recorded books have gaps between levels, which the synthetic
book never has, so walking and summing are overridden for sparse ladders.
``spec_for`` turns an instrument's rules into the simulator's symbol spec.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from scalper.core.model import (
    Instrument,
    Side,
)
from scalper.sim.book import SimBook
from scalper.sim.specs import SymbolSpec

__all__ = ["BacktestFill", "RecordedBook", "VenueSettings", "spec_for"]


def _positive_int_or_zero(_inst: object, attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{attribute.name}: must be an integer >= 0, got {value!r}")


def _fee(_inst: object, attribute: attrs.Attribute[Decimal], value: object) -> None:
    if type(value) is not Decimal or not value.is_finite() or not -1 < value < 1:
        raise ValueError(f"{attribute.name}: must be a fraction between -1 and 1, got {value!r}")


@attrs.frozen(kw_only=True)
class VenueSettings:
    """How the backtest's exchange behaves (fees as fractions: 0.0002 = 0.02 %)."""

    maker_fee: Decimal = attrs.field(default=Decimal("0.0002"), validator=_fee)
    taker_fee: Decimal = attrs.field(default=Decimal("0.00055"), validator=_fee)
    #: one-way delay of an order or a cancel, engine -> matching engine
    latency_ms: int = attrs.field(default=0, validator=_positive_int_or_zero)
    #: the bot's execution task cancels an order not final after this
    confirm_timeout_ms: int = attrs.field(default=10_000, validator=_positive_int_or_zero)
    #: wallet of the simulated account (large: the backtest judges the strategy, not margin)
    balance: Decimal = Decimal(10_000_000)


@attrs.frozen(kw_only=True)
class BacktestFill:
    """One execution of the backtest, with our fee (the digest and the report read these)."""

    t: int
    order_link_id: str  #: "" for the close an exchange-side stop fired
    side: Side
    qty: Decimal
    price: Decimal
    maker: bool
    fee: Decimal
    reduce_only: bool
    #: gross PnL this execution realised (0 for an opening one)
    realised: Decimal

    def digest_line(self) -> str:
        """The fill as one canonical text line (what the run's digest hashes)."""
        return (
            f"{self.t}|{self.order_link_id}|{self.side.value}|{self.qty}|{self.price}|"
            f"{'M' if self.maker else 'T'}|{self.fee}|{int(self.reduce_only)}\n"
        )


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def spec_for(instrument: Instrument) -> SymbolSpec:
    """The simulator's contract spec for a recorded instrument (its rules, a neutral market)."""
    return SymbolSpec(
        symbol=instrument.symbol,
        base=instrument.symbol.removesuffix("USDT"),
        symbol_id=1,
        price_scale=_decimals(instrument.tick_size),
        tick_size=instrument.tick_size,
        qty_step=instrument.qty_step,
        min_qty=instrument.min_qty,
        max_qty=instrument.max_qty,
        max_mkt_qty=instrument.max_mkt_qty,
        min_notional=instrument.min_notional,
        max_leverage=Decimal(100),
        start_price=instrument.tick_size * 1000,
        turnover24h=0.0,
        level_qty=float(instrument.qty_step),
    )


class RecordedBook(SimBook):
    """A ``SimBook`` loaded from a recorded book: sparse ladders, best level first."""

    __slots__ = ("_ask_ticks", "_bid_ticks")

    def __init__(self) -> None:
        super().__init__()
        self._bid_ticks: list[int] = []  # best (highest) first
        self._ask_ticks: list[int] = []  # best (lowest) first

    def load(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """Replace both sides with ``(tick, lots)`` levels, best first."""
        self.bids = dict(bids)
        self.asks = dict(asks)
        self._bid_ticks = [t for t, _ in bids]
        self._ask_ticks = [t for t, _ in asks]
        self._tops()
        self.u += 1

    def _tops(self) -> None:
        if self._bid_ticks:
            self.bid_top, self.bid_low = self._bid_ticks[0], self._bid_ticks[-1]
        else:
            self.bid_top, self.bid_low = 0, 1
        if self._ask_ticks:
            self.ask_top, self.ask_high = self._ask_ticks[0], self._ask_ticks[-1]
        else:
            self.ask_top, self.ask_high = 1, 0

    def take_asks(self, lots: int, limit: int | None) -> list[tuple[int, int]]:
        """Consume up to ``lots`` from the best asks priced <= ``limit``; return the fills."""
        return self._take(self.asks, self._ask_ticks, lots, limit, buy=True)

    def take_bids(self, lots: int, limit: int | None) -> list[tuple[int, int]]:
        """Consume up to ``lots`` from the best bids priced >= ``limit``; return the fills."""
        return self._take(self.bids, self._bid_ticks, lots, limit, buy=False)

    def _take(
        self, side: dict[int, int], ticks: list[int], lots: int, limit: int | None, *, buy: bool
    ) -> list[tuple[int, int]]:
        fills: list[tuple[int, int]] = []
        used = 0
        for t in ticks:
            if lots <= 0 or (limit is not None and (t > limit if buy else t < limit)):
                break
            have = side[t]
            take = min(have, lots)
            fills.append((t, take))
            lots -= take
            if take == have:
                del side[t]
                used += 1
            else:
                side[t] = have - take
        del ticks[:used]
        self._tops()
        return fills

    def available_asks(self, limit: int | None) -> int:
        """Lots on the ask side at prices <= ``limit`` (all when None)."""
        return sum(n for t, n in self.asks.items() if limit is None or t <= limit)

    def available_bids(self, limit: int | None) -> int:
        """Lots on the bid side at prices >= ``limit`` (all when None)."""
        return sum(n for t, n in self.bids.items() if limit is None or t >= limit)
