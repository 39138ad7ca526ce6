"""The simulated exchange's public market endpoints (``/v5/market/*``), no auth.

``MarketEndpoints`` is the base of ``sim.rest.RestApi``: it holds the exchange and
the parameter checks every endpoint shares (``category``, ``symbol``).
"""

from __future__ import annotations

from typing import Any

from .accounts import Account
from .errors import VenueError
from .market import backfill_candles
from .marketrows import instrument_row, recent_trade_row, ticker_rest_row
from .params import opt_int, opt_str, req_str
from .venue import Exchange

__all__ = ["MarketEndpoints", "Params", "Result", "page_cursor"]

Params = dict[str, Any]
Result = dict[str, Any]

_KLINE_MINUTES = {
    "1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240,
    "360": 360, "720": 720, "D": 1440, "W": 10080, "M": 43200,
}  # fmt: skip


class MarketEndpoints:
    """The market-data endpoints, and the shared checks of category and symbol."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange

    # ------------------------------------------------------------ market
    def _category(self, params: Params, *, listing: bool = False) -> bool:
        """Check ``category``: True for linear. Listings (instruments, tickers) answer an
        empty list for Bybit's other categories (generic clients load them all); every
        other endpoint refuses them."""
        category = opt_str(params, "category")
        if category is None:
            raise VenueError(10001, "params error: category is required")
        if category == "linear":
            return True
        if listing and category in ("spot", "inverse", "option"):
            return False
        raise VenueError(10001, f"params error: category {category} is not supported here")

    def _symbol(self, params: Params, required: bool = True) -> str | None:
        symbol = opt_str(params, "symbol") if not required else req_str(params, "symbol")
        if symbol is not None and symbol not in self.ex.specs:
            raise VenueError(10001, f"params error: symbol invalid: {symbol}")
        return symbol

    def market_time(self, _account: Account | None, _params: Params) -> Result:
        now = self.ex.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def instruments(self, _account: Account | None, params: Params) -> Result:
        if not self._category(params, listing=True):
            return {"category": params["category"], "list": [], "nextPageCursor": ""}
        symbol = opt_str(params, "symbol")
        status = opt_str(params, "status") or "Trading"
        base = opt_str(params, "baseCoin")
        limit = opt_int(params, "limit", 500, 1, 1000)
        specs = [
            s
            for s in self.ex.specs.values()
            if (symbol is None or s.symbol == symbol)
            and (base is None or s.base == base)
            and status == "Trading"
        ]
        start = page_cursor(params)
        page = specs[start : start + limit]
        more = start + limit < len(specs)
        return {
            "category": "linear",
            "list": [instrument_row(s) for s in page],
            "nextPageCursor": str(start + limit) if more else "",
        }

    def tickers(self, _account: Account | None, params: Params) -> Result:
        if not self._category(params, listing=True):
            return {"category": params["category"], "list": []}
        symbol = self._symbol(params, required=False)
        now = self.ex.now_ms()
        names = [symbol] if symbol else list(self.ex.specs)
        return {
            "category": "linear",
            "list": [ticker_rest_row(self.ex.sm(s), now) for s in names],
        }

    def orderbook(self, _account: Account | None, params: Params) -> Result:
        self._category(params)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = opt_int(params, "limit", 25, 1, 1000)
        sm = self.ex.sm(symbol)
        spec = sm.spec
        now = self.ex.now_ms()
        ps, qs = spec.price_str, spec.qty_str
        return {
            "s": symbol,
            "b": [[ps(t), qs(n)] for t, n in sm.book.top_bids(limit)],
            "a": [[ps(t), qs(n)] for t, n in sm.book.top_asks(limit)],
            "ts": now,
            "u": sm.book.u,
            "seq": sm.seq,
            "cts": now,
        }

    def recent_trade(self, _account: Account | None, params: Params) -> Result:
        self._category(params)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = opt_int(params, "limit", 500, 1, 1000)
        sm = self.ex.sm(symbol)
        trades = list(sm.trades)[-limit:]
        trades.reverse()
        return {"category": "linear", "list": [recent_trade_row(t, sm.spec) for t in trades]}

    def kline(self, _account: Account | None, params: Params) -> Result:
        self._category(params)
        symbol = self._symbol(params)
        assert symbol is not None
        interval = req_str(params, "interval")
        minutes = _KLINE_MINUTES.get(interval)
        if minutes is None:
            raise VenueError(10001, f"params error: interval invalid: {interval}")
        limit = opt_int(params, "limit", 200, 1, 1000)
        start = opt_int(params, "start", 0, 0, 2**62)
        end = opt_int(params, "end", 2**62, 0, 2**62)
        sm = self.ex.sm(symbol)
        backfill_candles(sm, self.ex.now_ms(), self.ex.market.seed)
        spec = sm.spec
        size = minutes * 60_000
        buckets: dict[int, list[float]] = {}
        for minute in sorted(sm.candles):
            o, h, lo, c, vol, turn = sm.candles[minute]
            key = minute - minute % size
            b = buckets.get(key)
            if b is None:
                buckets[key] = [o, h, lo, c, vol, turn]
            else:
                b[1], b[2], b[3] = max(b[1], h), min(b[2], lo), c
                b[4] += vol
                b[5] += turn
        if not buckets:
            now = self.ex.now_ms()
            t = sm.last_tick
            buckets[now - now % size] = [t, t, t, t, 0.0, 0.0]
        rows = [
            [
                str(k),
                spec.price_str(int(b[0])),
                spec.price_str(int(b[1])),
                spec.price_str(int(b[2])),
                spec.price_str(int(b[3])),
                f"{b[4]:.{spec.qty_decimals}f}",
                f"{b[5]:.4f}",
            ]
            for k, b in sorted(buckets.items(), reverse=True)
            if start <= k <= end
        ][:limit]
        return {"symbol": symbol, "category": "linear", "list": rows}


def page_cursor(params: Params) -> int:
    text = opt_str(params, "cursor")
    if text is None:
        return 0
    if not text.isdigit():
        raise VenueError(10001, "params error: cursor invalid")
    return int(text)
