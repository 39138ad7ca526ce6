"""The interface between the replay loop and whatever fills its orders.

The player (``replay.player.Replayer``) only needs these calls, each returning the
engine events to feed back; ``replay.venue.MatchingVenue`` (the simulator's matcher on
the recorded market) is the one the commands use, and a test may pass its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

from scalper.core.book import OrderBook
from scalper.core.model import (
    BookTop,
    Event,
    Instrument,
    OrderIntent,
    PositionSnapshot,
    Trade,
    TriggerBy,
)

from .recorded import BacktestFill

__all__ = ["Venue", "VenueFactory"]


class Venue(Protocol):
    """What carries out the engine's orders during a replay; each call returns the events
    to feed back (``replay.venue.MatchingVenue`` is the one the commands use)."""

    @property
    def fills(self) -> list[BacktestFill]:
        """Every execution so far, in order."""

    @property
    def realised_pnl(self) -> Decimal:
        """Gross PnL realised so far."""

    @property
    def fees(self) -> Decimal:
        """The fees paid so far."""

    def place(
        self, intent: OrderIntent, now_ms: int, top: BookTop | None, last_price: float | None
    ) -> list[Event]: ...

    def cancel(self, order_link_id: str, reason: str = "cancelled") -> list[Event]: ...

    def expire(self, now_ms: int) -> list[Event]: ...

    def settle(self, now_ms: int) -> list[Event]: ...

    def on_book(self, top: BookTop, now_ms: int) -> list[Event]: ...

    def on_trades(self, trades: Sequence[Trade], now_ms: int) -> list[Event]: ...

    def snapshot_events(self, symbol: str) -> list[Event]: ...

    def protect(self, symbol: str, stop_loss: Decimal, trigger_by: TriggerBy) -> list[Event]: ...

    def closed_pnl(self, symbol: str | None) -> list[Event]: ...

    def position(self) -> PositionSnapshot: ...

    def unrealised(self, mark: float | None) -> Decimal: ...


#: builds the venue of a replay from the replayed book and the instrument's rules
VenueFactory = Callable[[OrderBook, Instrument], Venue]
