"""Bybit's public market-data records (instrument, ticker, trade) built from the market.

Field sets and JSON types follow Bybit's documented samples (``tests/fixtures/bybit``:
instruments-info, REST
tickers, the ``tickers`` stream snapshot, recent-trade, publicTrade).
"""

from __future__ import annotations

from typing import Any

from .market import PublicTrade, SymbolMarket
from .specs import SymbolSpec

__all__ = [
    "FUNDING_INTERVAL_MS",
    "instrument_row",
    "public_trade_item",
    "recent_trade_row",
    "ticker_rest_row",
    "ticker_stream_data",
]

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
_LAUNCH = {"BTCUSDT": "1585526400000", "ETHUSDT": "1615766400000"}


def instrument_row(spec: SymbolSpec) -> dict[str, Any]:
    """One linear perpetual as in ``/v5/market/instruments-info``."""
    max_price = spec.price_str((10**spec.price_scale * 2_000_000) // spec.tick_units - 1)
    if spec.start_price < 1:
        max_price = spec.price_str((10**spec.price_scale * 2_000) // spec.tick_units - 1)
    return {
        "symbol": spec.symbol,
        "symbolId": spec.symbol_id,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": spec.base,
        "quoteCoin": "USDT",
        "launchTime": _LAUNCH.get(spec.symbol, "1640995200000"),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(spec.price_scale),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": format(spec.max_leverage, "f"),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": format(spec.tick_size, "f"),
            "maxPrice": max_price,
            "tickSize": format(spec.tick_size, "f"),
        },
        "lotSizeFilter": {
            "maxOrderQty": format(spec.max_qty, "f"),
            "minOrderQty": format(spec.min_qty, "f"),
            "qtyStep": format(spec.qty_step, "f"),
            "postOnlyMaxOrderQty": format(spec.max_qty, "f"),
            "maxMktOrderQty": format(spec.max_mkt_qty, "f"),
            "minNotionalValue": format(spec.min_notional, "f"),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def _pct(sm: SymbolMarket) -> str:
    prev = sm.prev24h_tick
    return f"{(sm.last_tick - prev) / prev:.6f}" if prev else "0"


def _common(sm: SymbolMarket, now_ms: int) -> dict[str, str]:
    spec = sm.spec
    book = sm.book
    mark = spec.price_str(sm.mark_tick)
    last_price = sm.last_tick * sm.tick_size
    next_funding = now_ms - now_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS
    bid_tick = book.bid_top if book.has_bids else sm.last_tick
    ask_tick = book.ask_top if book.has_asks else sm.last_tick
    return {
        "symbol": spec.symbol,
        "lastPrice": spec.price_str(sm.last_tick),
        "indexPrice": mark,
        "markPrice": mark,
        "prevPrice24h": spec.price_str(sm.prev24h_tick),
        "price24hPcnt": _pct(sm),
        "highPrice24h": spec.price_str(sm.high_tick),
        "lowPrice24h": spec.price_str(sm.low_tick),
        "prevPrice1h": spec.price_str(sm.prev1h_tick),
        "openInterest": f"{sm.open_interest:.{spec.qty_decimals}f}",
        "openInterestValue": f"{sm.open_interest * last_price:.2f}",
        "turnover24h": f"{sm.turnover24h:.4f}",
        "volume24h": f"{sm.turnover24h / last_price:.4f}",
        "fundingRate": "0.0001",
        "nextFundingTime": str(next_funding),
        "bid1Price": spec.price_str(bid_tick),
        "bid1Size": spec.qty_str(book.bids.get(bid_tick, 0)),
        "ask1Price": spec.price_str(ask_tick),
        "ask1Size": spec.qty_str(book.asks.get(ask_tick, 0)),
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
        "fundingIntervalHour": "8",
        "fundingCap": "0.005",
    }


def ticker_rest_row(sm: SymbolMarket, now_ms: int) -> dict[str, str]:
    """One symbol as in ``/v5/market/tickers`` (category linear)."""
    row = _common(sm, now_ms)
    row.update(
        {
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "basis": "",
            "basisRateYear": "",
        }
    )
    return row


def ticker_stream_data(sm: SymbolMarket, now_ms: int) -> dict[str, str]:
    """The ``tickers.{symbol}`` stream's data object (snapshot form: every field)."""
    row = _common(sm, now_ms)
    row["tickDirection"] = sm.last_direction
    return row


def public_trade_item(trade: PublicTrade, spec: SymbolSpec) -> dict[str, Any]:
    """One item of a ``publicTrade`` push."""
    return {
        "T": trade.ts,
        "s": trade.symbol,
        "S": trade.side,
        "v": spec.qty_str(trade.lots),
        "p": spec.price_str(trade.tick),
        "L": trade.tick_direction,
        "i": trade.trade_id,
        "BT": False,
        "RPI": False,
        "seq": trade.seq,
    }


def recent_trade_row(trade: PublicTrade, spec: SymbolSpec) -> dict[str, Any]:
    """One row of ``/v5/market/recent-trade``."""
    return {
        "execId": trade.trade_id,
        "symbol": trade.symbol,
        "price": spec.price_str(trade.tick),
        "size": spec.qty_str(trade.lots),
        "side": trade.side,
        "time": str(trade.ts),
        "isBlockTrade": False,
        "isRPITrade": False,
        "seq": str(trade.seq),
    }
