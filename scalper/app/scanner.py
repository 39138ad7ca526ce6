"""The scanner task: every ``interval_s``, read the tickers and maybe pick a new symbol.

The choice itself is ``core.scanner`` (pure); this task only fetches, applies it and
tells the engine. It reports ``SymbolSelected`` even while a position is open: the
engine decides *when* the switch happens (only once flat, after closing first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio
from loguru import logger

from ..bybit.errors import BybitError
from ..core.model import Event, Instrument, SymbolSelected
from ..core.scanner import ScannerConfig, rank
from .api import ExchangeApi

__all__ = ["Scanner"]

Report = Callable[[Event], Awaitable[None]]


@attrs.define(eq=False)
class Scanner:
    """Chooses the traded symbol; remembers the current one and the instrument rules."""

    _api: ExchangeApi
    _config: ScannerConfig
    #: instrument rules by symbol (shared with market data; refreshed on a miss)
    instruments: dict[str, Instrument]
    current: str | None = attrs.field(init=False, default=None)

    async def scan_once(self, report: Report) -> str | None:
        """One scan: returns the newly selected symbol, or None when staying."""
        stats = await self._api.ticker_stats()
        choice = self._config.choose(stats, self.current)
        ranked = rank(stats, min_turnover=self._config.min_turnover, exclude=self._config.exclude)
        top = ", ".join(f"{s}={v / 1e6:.1f}M" for s, v in ranked[:3])
        if choice is None or choice == self.current:
            logger.bind(symbol=self.current or "-").info("scan: staying (top: {})", top)
            return None
        if choice not in self.instruments:
            self.instruments.update({i.symbol: i for i in await self._api.instruments()})
        instrument = self.instruments.get(choice)
        if instrument is None:
            logger.warning("scan: {} has no instrument rules; not switching", choice)
            return None
        logger.bind(symbol=choice).info(
            "scan: selecting {} (was {}; top: {})", choice, self.current or "none", top
        )
        self.current = choice
        await report(SymbolSelected(symbol=choice, instrument=instrument))
        return choice

    async def run(
        self,
        report: Report,
        interval_s: float,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Scan now, then every ``interval_s``; a failed scan is logged and retried."""
        task_status.started()
        while True:
            try:
                await self.scan_once(report)
            except BybitError as exc:
                logger.warning("scan failed: {}", exc)
            await trio.sleep(interval_s)
