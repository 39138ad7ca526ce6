"""The simulated exchange's public market endpoints (``/v5/market/*``), no auth.

One of the three endpoint groups ``sim.rest.RestApi`` routes to (market, orders,
account), each a method per path taking the request's parameters. ``category`` is
checked by the route before the call, except for the listings (instruments, tickers),
which answer an empty list for Bybit's other categories.
"""

from __future__ import annotations

import attrs

from .errors import VenueError
from .market import backfill_candles
from .marketrows import instrument_row, recent_trade_row, ticker_rest_row
from .params import (
    Params,
    Result,
    check_category,
    listed_symbol,
    opt_int,
    opt_str,
    page,
    req_str,
    required_symbol,
)
from .venue import Exchange

__all__ = ["MarketEndpoints"]

_KLINE_MINUTES = {
    "1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240,
    "360": 360, "720": 720, "D": 1440, "W": 10080, "M": 43200,
}  # fmt: skip


@attrs.frozen
class MarketEndpoints:
    """The market-data endpoints of the venue ``ex``."""

    ex: Exchange

    def market_time(self, _params: Params) -> Result:
        now = self.ex.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def instruments(self, params: Params) -> Result:
        if not check_category(params, listing=True):
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
        listed, cursor = page(specs, params, limit)
        return {
            "category": "linear",
            "list": [instrument_row(s) for s in listed],
            "nextPageCursor": cursor,
        }

    def tickers(self, params: Params) -> Result:
        if not check_category(params, listing=True):
            return {"category": params["category"], "list": []}
        symbol = listed_symbol(params, self.ex.specs)
        now = self.ex.now_ms()
        names = [symbol] if symbol else list(self.ex.specs)
        return {
            "category": "linear",
            "list": [ticker_rest_row(self.ex.sm(s), now) for s in names],
        }

    def orderbook(self, params: Params) -> Result:
        symbol = required_symbol(params, self.ex.specs)
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

    def recent_trade(self, params: Params) -> Result:
        symbol = required_symbol(params, self.ex.specs)
        limit = opt_int(params, "limit", 500, 1, 1000)
        sm = self.ex.sm(symbol)
        trades = list(sm.trades)[-limit:]
        trades.reverse()
        return {"category": "linear", "list": [recent_trade_row(t, sm.spec) for t in trades]}

    def kline(self, params: Params) -> Result:
        symbol = required_symbol(params, self.ex.specs)
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
