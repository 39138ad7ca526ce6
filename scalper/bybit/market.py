"""The public market-data endpoints: the exchange clock, instruments, tickers, the book.

None of these is signed, so they work without credentials (the recorder and the
scanner use them that way); bad rows of a listing are counted and skipped rather than
failing the whole read.
"""

from __future__ import annotations

from scalper.core.model import Instrument, TickerStat

from .endpoints import Endpoints, parsed_row, result_list
from .errors import ProtocolError
from .messages import BookMessage, Ticker
from .paths import CATEGORY, MARKET_INSTRUMENTS, MARKET_ORDERBOOK, MARKET_TICKERS, MARKET_TIME
from .rows import book_from_rest, instrument_from_wire, ticker_from_wire

__all__ = ["MarketReads"]


class MarketReads(Endpoints):
    """Unsigned reads of linear market data."""

    async def server_time_ms(self, *, deadline: float | None = None) -> int:
        """The exchange's time, ms (``MARKET_TIME``). ``deadline``: as for ``order``."""
        result = await self._retrier.call("GET", MARKET_TIME, {}, signed=False, deadline=deadline)
        try:
            return int(result["timeNano"]) // 1_000_000
        except (KeyError, TypeError, ValueError):
            try:
                return int(result["timeSecond"]) * 1000
            except (KeyError, TypeError, ValueError) as exc:
                raise ProtocolError(f"{MARKET_TIME}: no usable timeNano/timeSecond") from exc

    async def instruments(self) -> list[Instrument]:
        """Every trading linear instrument, paging through ``nextPageCursor``."""
        rows = await self._paged(
            MARKET_INSTRUMENTS, {"category": CATEGORY, "limit": 1000}, signed=False
        )
        return self._good_rows(instrument_from_wire, rows, "instrument", "symbol")

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        """Linear tickers (all symbols, or one). Bad rows are skipped and counted."""
        result = await self._retrier.call(
            "GET", MARKET_TICKERS, {"category": CATEGORY, "symbol": symbol}, signed=False
        )
        rows = result_list(result, MARKET_TICKERS)
        return self._good_rows(ticker_from_wire, rows, "ticker", "symbol")

    async def ticker_stats(self) -> list[TickerStat]:
        """The scanner's slice of every linear ticker (rows without the fields are left out)."""
        return [
            TickerStat(
                symbol=t.symbol,
                turnover24h=t.turnover_24h,
                price24h_pcnt=t.price_24h_pcnt,
                last_price=t.last_price,
            )
            for t in await self.tickers()
            if t.turnover_24h is not None
            and t.price_24h_pcnt is not None
            and t.last_price is not None
        ]

    async def orderbook(self, symbol: str, limit: int = 50) -> BookMessage:
        """An L2 snapshot (its ``update_id`` matches the stream's ``u``)."""
        result = await self._retrier.call(
            "GET",
            MARKET_ORDERBOOK,
            {"category": CATEGORY, "symbol": symbol, "limit": limit},
            signed=False,
        )
        return parsed_row(book_from_rest, result, MARKET_ORDERBOOK)
