"""What the account must be before the bot trades, and what it holds at start-up.

The bot sends one-way orders, so a hedge-mode account is refused before anything is
placed or journaled (one line, exit 2). At start-up our stray orders of an earlier
run are cancelled and at most one open position is adopted: the engine trades one
symbol, and only a position the scanner could have chosen is the bot's to manage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loguru import logger

from ..bybit.rest import BybitRest
from ..core.model import Event, Instrument, PositionSnapshot, SymbolSelected
from ..core.scanner import ScannerConfig
from .reconcile import startup_sweep
from .scanner import Scanner

__all__ = ["HedgeModeError", "adopt_positions", "refuse_hedge_mode"]


class HedgeModeError(Exception):
    """The account is in hedge mode: the bot trades one-way positions only (exit 2)."""


async def refuse_hedge_mode(rest: BybitRest, instruments: dict[str, Instrument]) -> None:
    """Refuse a hedge-mode account before anything is placed.

    The bot sends one-way orders (``positionIdx`` 0): in hedge mode Bybit rejects them,
    closes included, forever. Position rows with ``positionIdx`` 1 or 2 give it away:
    the open ones (one read of all), and a flat symbol's rows (Bybit lists both sides).
    """
    rows: list[PositionSnapshot] = list(await rest.open_positions())
    if instruments:
        rows.append(await rest.position(next(iter(instruments))))
    hedged = sorted({p.symbol for p in rows if p.position_idx in (1, 2)})
    if hedged:
        raise HedgeModeError(
            "hedge mode: the account holds two-sided positions "
            f"(positionIdx 1/2 on {', '.join(hedged)}); switch it to one-way mode "
            "(Bybit: Derivatives > Position mode) to run this bot"
        )


async def adopt_positions(
    rest: BybitRest,
    prefix: str,
    scanner: Scanner,
    config: ScannerConfig,
    report: Callable[[Event], Awaitable[None]],
) -> None:
    """Start-up: cancel our stray orders; adopt one open position the bot may trade.

    The engine trades one symbol, so at most one position is adopted, and only on a
    symbol the scanner could have chosen (an excluded symbol's position, BTC say, is
    most likely a human's). Any other open position is left alone, loudly.
    """
    instruments = scanner.instruments
    for position in await startup_sweep(rest, prefix):
        tradeable = position.symbol in instruments and position.symbol not in config.exclude
        if tradeable and scanner.current is None:
            scanner.current = position.symbol
            await report(
                SymbolSelected(symbol=position.symbol, instrument=instruments[position.symbol])
            )
            await report(position)
            continue
        why = "excluded from trading" if not tradeable else "another position was adopted"
        logger.bind(symbol=position.symbol).warning(
            "ALERT: open position on {} is not managed by this bot ({}): it is left as is",
            position.symbol,
            why,
        )
