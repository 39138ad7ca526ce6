"""The simulated exchange's listed contracts and the integer grids behind them.

Prices live on the hot path as integer *units* of ``10**-price_scale`` and sizes as
integer *lots* of ``qtyStep``; strings are made only at the edge (``fmt_units``), so the
market can step thousands of times a second without Decimal. Decimals appear where
orders are checked and matched (not hot).

The numbers (tick sizes, qty steps, limits) are modelled on Bybit's real linear
perpetuals so that rounding code tested here meets the same grids in production.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal

import attrs

__all__ = ["DEFAULT_SPECS", "SymbolSpec", "fmt_units", "specs_for"]


def fmt_units(value: int, scale: int) -> str:
    """``value * 10**-scale`` as a fixed-point string with ``scale`` decimals ("30247.20")."""
    if scale == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def _formatter(units: int, scale: int) -> Callable[[int], str]:
    """``n -> fmt_units(n * units, scale)``, specialised for speed."""
    if scale == 0:
        if units == 1:
            return str
        return lambda n: str(n * units)
    width = scale + 1

    def fmt(n: int) -> str:
        digits = str(n * units)
        if len(digits) < width:
            if n < 0:
                return fmt_units(n * units, scale)
            digits = digits.rjust(width, "0")
        return f"{digits[:-scale]}.{digits[-scale:]}"

    return fmt


@attrs.frozen(kw_only=True)
class SymbolSpec:
    """One listed linear contract: trading rules plus the synthetic market's character."""

    symbol: str
    base: str
    symbol_id: int
    #: decimals of a price string (Bybit's priceScale)
    price_scale: int
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_mkt_qty: Decimal
    min_notional: Decimal
    max_leverage: Decimal
    #: starting price of the synthetic walk
    start_price: Decimal
    #: 24 h turnover in USDT at start (the scanner ranks on it)
    turnover24h: float
    #: typical size of one book level, in base coin
    level_qty: float
    #: volatility multiplier of the walk (mid-caps move more than BTC)
    vol: float = 1.0

    @functools.cached_property
    def tick_units(self) -> int:
        """Price units (``10**-price_scale``) per tick."""
        return int(self.tick_size.scaleb(self.price_scale))

    @functools.cached_property
    def qty_decimals(self) -> int:
        """Decimals of a quantity string (from ``qtyStep``)."""
        exp = self.qty_step.as_tuple().exponent
        assert isinstance(exp, int)
        return max(0, -exp)

    @functools.cached_property
    def lot_units(self) -> int:
        """Quantity units (``10**-qty_decimals``) per lot (``qtyStep``)."""
        return int(self.qty_step.scaleb(self.qty_decimals))

    @functools.cached_property
    def price_str(self) -> Callable[[int], str]:
        """Formats a tick index as Bybit's price string (hot path: no Decimal)."""
        return _formatter(self.tick_units, self.price_scale)

    @functools.cached_property
    def qty_str(self) -> Callable[[int], str]:
        """Formats a lot count as Bybit's quantity string (hot path: no Decimal)."""
        return _formatter(self.lot_units, self.qty_decimals)

    def price_of(self, tick: int) -> Decimal:
        """A tick index as an exact Decimal price."""
        return Decimal(tick) * self.tick_size

    def qty_of(self, lots: int) -> Decimal:
        """A lot count as an exact Decimal quantity."""
        return Decimal(lots) * self.qty_step


def _spec(
    symbol: str,
    symbol_id: int,
    scale: int,
    tick: str,
    step: str,
    max_qty: str,
    max_mkt: str,
    price: str,
    turnover: float,
    level_qty: float,
    vol: float,
    max_lev: str = "50.00",
) -> SymbolSpec:
    return SymbolSpec(
        symbol=symbol,
        base=symbol.removesuffix("USDT"),
        symbol_id=symbol_id,
        price_scale=scale,
        tick_size=Decimal(tick),
        qty_step=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(max_qty),
        max_mkt_qty=Decimal(max_mkt),
        min_notional=Decimal("5"),
        max_leverage=Decimal(max_lev),
        start_price=Decimal(price),
        turnover24h=turnover,
        level_qty=level_qty,
        vol=vol,
    )


#: The default listing: BTC/ETH plus liquid mid-caps (turnover > 10 M) for the scanner.
#: columns: symbol, id, priceScale, tickSize, qtyStep, maxOrderQty, maxMktOrderQty,
#: start price, turnover24h, typical level size, volatility multiplier, max leverage
# fmt: off
DEFAULT_SPECS: tuple[SymbolSpec, ...] = (
    _spec("BTCUSDT", 5, 2, "0.10", "0.001", "1190.000", "500.000", "95000.00", 4.9e9, 0.8, 0.8, "100.00"),  # noqa: E501
    _spec("ETHUSDT", 6, 2, "0.01", "0.01", "7240.00", "3000.00", "3400.00", 2.5e9, 9.0, 1.0, "100.00"),  # noqa: E501
    _spec("SOLUSDT", 40, 3, "0.010", "0.1", "79770.0", "30000.0", "180.000", 8.0e8, 120.0, 1.2, "100.00"),  # noqa: E501
    _spec("XRPUSDT", 30, 4, "0.0001", "1", "2150000", "434000", "2.2000", 6.0e8, 9000.0, 1.2),
    _spec("DOGEUSDT", 31, 5, "0.00001", "1", "12000000", "1000000", "0.38000", 4.0e8, 60000.0, 1.4),
    _spec("1000PEPEUSDT", 77, 7, "0.0000001", "100", "300000000", "40000000", "0.0185000", 1.8e8, 1.2e6, 1.6),  # noqa: E501
    _spec("SUIUSDT", 95, 5, "0.00010", "10", "2500000", "500000", "3.60000", 1.2e8, 6000.0, 1.5),
    _spec("ADAUSDT", 32, 4, "0.0001", "1", "3800000", "700000", "0.9500", 1.5e8, 20000.0, 1.3),
    _spec("LINKUSDT", 41, 3, "0.001", "0.1", "200000.0", "40000.0", "22.500", 9.0e7, 900.0, 1.4),
    _spec("AVAXUSDT", 42, 3, "0.001", "0.1", "150000.0", "30000.0", "38.000", 7.0e7, 500.0, 1.4),
    _spec("WIFUSDT", 120, 4, "0.0001", "1", "2000000", "400000", "2.1000", 4.5e7, 9000.0, 1.7),
    _spec("LTCUSDT", 33, 2, "0.01", "0.1", "60000.0", "12000.0", "105.00", 3.0e7, 150.0, 1.1),
)
# fmt: on


def specs_for(symbols: list[str] | tuple[str, ...] | None) -> tuple[SymbolSpec, ...]:
    """The default specs, or the named subset in the given order (ValueError on unknown)."""
    if not symbols:
        return DEFAULT_SPECS
    by_name = {spec.symbol: spec for spec in DEFAULT_SPECS}
    unknown = [name for name in symbols if name not in by_name]
    if unknown:
        known = ", ".join(by_name)
        raise ValueError(f"unknown symbol(s) {', '.join(unknown)}; the simulator lists {known}")
    return tuple(by_name[name] for name in symbols)
