"""Choosing the symbol to trade from the linear tickers.

Rules:

* keep USDT pairs only (``...USDT``; dated futures such as ``BTCUSDT-26DEC25`` are out);
* drop the configured exclusions (BTCUSDT, ETHUSDT by default) and stablecoin pairs
  (USDCUSDT, FDUSDUSDT, ...: they do not move, and a scalper needs movement);
* drop anything with turnover24h below ``min_turnover`` (10 M USDT) or non-finite data;
* score = turnover24h * |price24hPcnt|: liquid *and* moving;
* switch only when the best score beats the current symbol's **live** score by
  ``switch_ratio`` (1.2x), so the bot does not flap between two close candidates. A
  current symbol that left the list or no longer passes the filters scores 0, so it is
  replaced by any candidate.

Ties are broken by symbol name (ascending), so the choice is deterministic whatever
order the exchange lists tickers in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs

from .model import TickerStat

__all__ = [
    "DEFAULT_EXCLUDE",
    "STABLECOIN_BASES",
    "ScannerConfig",
    "TickerStat",
    "choose",
    "is_stablecoin_pair",
    "rank",
    "score",
]

#: symbols never traded unless the settings say otherwise
DEFAULT_EXCLUDE: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")

#: base assets that are stablecoins (or fiat-pegged): their pairs barely move
STABLECOIN_BASES: frozenset[str] = frozenset(
    {
        "USDC",
        "FDUSD",
        "TUSD",
        "DAI",
        "USDE",
        "BUSD",
        "USDP",
        "PYUSD",
        "USDD",
        "USD1",
        "USDS",
        "RLUSD",
        "GUSD",
        "LUSD",
        "FRAX",
        "SUSD",
        "EURC",
        "EURT",
        "UST",
    }
)

_QUOTE = "USDT"


def is_stablecoin_pair(symbol: str) -> bool:
    """True for a stablecoin-vs-USDT pair (USDCUSDT, FDUSDUSDT, USDEUSDT, ...)."""
    base = symbol.removesuffix(_QUOTE)
    return base in STABLECOIN_BASES


def _symbols(value: Iterable[str]) -> tuple[str, ...]:
    """Typed converter (``converter=tuple`` would leave mypy an unbound generic)."""
    return tuple(value)


@attrs.frozen(kw_only=True)
class ScannerConfig:
    """The scanner's settings (``[scanner]`` min_turnover, switch_ratio, exclude)."""

    min_turnover: float = attrs.field(default=10_000_000.0, validator=attrs.validators.ge(0))
    switch_ratio: float = attrs.field(default=1.2, validator=attrs.validators.ge(1.0))
    exclude: tuple[str, ...] = attrs.field(default=DEFAULT_EXCLUDE, converter=_symbols)

    def choose(self, tickers: Iterable[TickerStat], current: str | None) -> str | None:
        """``choose`` with this configuration."""
        return choose(
            tickers,
            current,
            self.switch_ratio,
            min_turnover=self.min_turnover,
            exclude=self.exclude,
        )


def score(ticker: TickerStat) -> float:
    """turnover24h * |price24hPcnt|."""
    return ticker.turnover24h * abs(ticker.price24h_pcnt)


def _eligible(ticker: TickerStat, min_turnover: float, exclude: frozenset[str]) -> bool:
    symbol = ticker.symbol
    return (
        symbol.endswith(_QUOTE)
        and len(symbol) > len(_QUOTE)
        and symbol not in exclude
        and not is_stablecoin_pair(symbol)
        and math.isfinite(ticker.turnover24h)
        and math.isfinite(ticker.price24h_pcnt)
        and ticker.turnover24h >= min_turnover
    )


def rank(
    tickers: Iterable[TickerStat],
    *,
    min_turnover: float = 10_000_000.0,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> list[tuple[str, float]]:
    """Eligible symbols with their scores, best first (ties by symbol, ascending).

    A symbol listed twice keeps its last row (the newest snapshot wins).
    """
    excluded = frozenset(exclude)
    scores: dict[str, float] = {}
    for ticker in tickers:
        if _eligible(ticker, min_turnover, excluded):
            scores[ticker.symbol] = score(ticker)
        else:
            scores.pop(ticker.symbol, None)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def choose(
    tickers: Iterable[TickerStat],
    current: str | None,
    switch_ratio: float = 1.2,
    *,
    min_turnover: float = 10_000_000.0,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> str | None:
    """The symbol to switch to, or None to stay where we are.

    With no current symbol, the best eligible one (None if none is eligible). With a
    current symbol, the best one only if its score is strictly greater than
    ``switch_ratio`` times the current symbol's live score (0 if it is gone or filtered).
    """
    ranked = rank(tickers, min_turnover=min_turnover, exclude=exclude)
    if not ranked:
        return None
    best, best_score = ranked[0]
    if current is None:
        return best
    if best == current:
        return None
    current_score = dict(ranked).get(current)
    if current_score is None:
        # The current symbol left the list or no longer passes the filters: its live
        # score is 0 and any eligible candidate replaces it.
        return best
    return best if best_score > switch_ratio * current_score else None
