"""The market-data -> strategy hop: try-send, never block the socket reader.

Market data is superseded by the next update, so when the strategy lags the right
move is to drop, not to queue: a queue of stale books only delays the decision on
the fresh one. But a drop is never silent: it is counted and logged at most once per
``log_interval_s`` with the number dropped since the last line (the seed's fix 5).

Trades are different from books: a dropped book is replaced by the next one, a
dropped trade is gone from the VWAP window. So trades that could not be sent are kept
(bounded) and ride along with the next message that gets through.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from loguru import logger

from ..core.model import BookTop, BookUpdate, Trade, TradeTicks
from .metrics import Metrics

__all__ = ["MarketFeed", "MarketMessage"]

MarketMessage = BookUpdate | TradeTicks

#: the strategy's window is 100 trades: keeping more than a few windows is pointless
_MAX_PENDING_TRADES = 1000


class MarketFeed:
    """Sending end of the market-data channel, with drop accounting."""

    def __init__(
        self,
        send: trio.MemorySendChannel[tuple[float, MarketMessage]],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = trio.current_time,
        log_interval_s: float = 5.0,
    ) -> None:
        self._send = send
        self._metrics = metrics
        self._clock = clock
        self._log_interval_s = log_interval_s
        self._dropped_since_log = 0
        self._last_log = -float("inf")
        self._pending: list[Trade] = []
        self._pending_symbol = ""

    @property
    def pending_trades(self) -> int:
        """Trades waiting for a free slot (for tests and the status panel)."""
        return len(self._pending)

    def book(self, top: BookTop, received_at: float) -> bool:
        """Offer a book update; returns False when it was dropped."""
        if self._pending and self._pending_symbol == top.symbol and not self._flush(received_at):
            # trades first: they cannot be superseded; the book can
            return self._dropped()
        return self._offer(received_at, BookUpdate(top=top))

    def trades(self, symbol: str, trades: tuple[Trade, ...], received_at: float) -> bool:
        """Offer trades; on a full channel they are kept for the next send."""
        if self._pending_symbol != symbol:
            self._pending.clear()
            self._pending_symbol = symbol
        self._pending.extend(trades)
        if len(self._pending) > _MAX_PENDING_TRADES:
            del self._pending[: len(self._pending) - _MAX_PENDING_TRADES]
        if self._flush(received_at):
            return True
        return self._dropped()

    def _flush(self, received_at: float) -> bool:
        message = TradeTicks(symbol=self._pending_symbol, trades=tuple(self._pending))
        if self._try_send(received_at, message):
            self._pending.clear()
            return True
        return False

    def _offer(self, received_at: float, message: MarketMessage) -> bool:
        return self._try_send(received_at, message) or self._dropped()

    def _try_send(self, received_at: float, message: MarketMessage) -> bool:
        try:
            self._send.send_nowait((received_at, message))
        except trio.WouldBlock:
            return False
        return True

    def _dropped(self) -> bool:
        self._metrics.market_dropped += 1
        self._dropped_since_log += 1
        now = self._clock()
        if now - self._last_log >= self._log_interval_s:
            logger.warning(
                "market-data channel full: dropped {} updates (strategy lagging; {} total)",
                self._dropped_since_log,
                self._metrics.market_dropped,
            )
            self._dropped_since_log = 0
            self._last_log = now
        return False
