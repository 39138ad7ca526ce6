"""What the trio tasks need from an exchange, as a Protocol.

The tasks are written against this narrow surface, not against ``BybitRest`` itself,
so each task can be tested with a small in-memory fake under ``MockClock`` (a 10 s
confirmation timeout then takes no real time), while the whole-bot tests run the
real client against the simulator. ``BybitRest`` satisfies it structurally.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from ..core.model import (
    ClosedPnl,
    Instrument,
    OrderIntent,
    OrderUpdate,
    PositionSnapshot,
    TickerStat,
    TriggerBy,
)

__all__ = ["ExchangeApi"]


class ExchangeApi(Protocol):
    """Reads and order calls the bot makes over REST (all typed, all may raise BybitError)."""

    async def instruments(self) -> list[Instrument]:
        """Every trading linear instrument."""
        ...

    async def ticker_stats(self) -> list[TickerStat]:
        """24 h statistics of every linear ticker (for the scanner)."""
        ...

    async def place_order(self, intent: OrderIntent) -> str:
        """Place idempotently by ``intent.order_link_id``; return the exchange's order id."""
        ...

    async def cancel_order(self, symbol: str, order_link_id: str) -> None:
        """Cancel one order (an order already final is not an error here)."""
        ...

    async def order(self, symbol: str, order_link_id: str) -> OrderUpdate | None:
        """Read one order by client id (open or recently closed); None when unknown."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        """Working orders, of one symbol or of every USDT contract."""
        ...

    async def position(self, symbol: str) -> PositionSnapshot:
        """The one-way position of ``symbol`` (flat included)."""
        ...

    async def open_positions(self) -> list[PositionSnapshot]:
        """Every non-flat USDT position (one read, ``settleCoin=USDT``)."""
        ...

    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None,
        trigger_by: TriggerBy = TriggerBy.MARK_PRICE,
    ) -> None:
        """Set (or, with None, remove) the position's exchange-side stop (tpslMode Full).

        A refusal (wrong side, zero position) raises ``InvalidRequest``. The tasks never
        set a take-profit or a hedge-mode position index, so those stay off this surface.
        """
        ...

    async def closed_pnl(
        self, *, start_ms: int, end_ms: int | None = None, symbol: str | None = None
    ) -> list[ClosedPnl]:
        """Closed-PnL rows (net of fees) since ``start_ms``, newest first."""
        ...

    async def wallet_equity(self) -> Decimal:
        """Total equity in USDT."""
        ...
