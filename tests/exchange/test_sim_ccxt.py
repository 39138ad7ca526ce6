"""ccxt's unmodified bybit client, pointed at the simulator: markets, book, wallet,
positions, an order's whole life, and Bybit's error codes mapped to ccxt's errors.

ccxt is synchronous here (requests), so it runs in a worker thread while the simulator
keeps serving on the trio loop. Only its base URLs are changed.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from scalper.sim import SimConfig, open_sim

ccxt = pytest.importorskip("ccxt")

SYMBOL = "SOL/USDT:USDT"


def _client(url: str, secret: str = "sim-secret") -> Any:
    exchange = ccxt.bybit(
        {
            "apiKey": "sim-key",
            "secret": secret,
            "enableRateLimit": False,
            "options": {"defaultType": "swap"},
        }
    )
    exchange.urls["api"] = {name: url for name in exchange.urls["api"]}
    return exchange


def _scenario(url: str) -> dict[str, Any]:
    ex = _client(url)
    out: dict[str, Any] = {"markets": ex.load_markets()}
    out["ticker"] = ex.fetch_ticker(SYMBOL)
    out["book"] = ex.fetch_order_book(SYMBOL, 25)
    out["balance"] = ex.fetch_balance()
    out["positions_before"] = ex.fetch_positions([SYMBOL])
    far = ex.price_to_precision(SYMBOL, out["book"]["bids"][0][0] * 0.9)
    out["placed"] = ex.create_order(SYMBOL, "limit", "buy", 1, far, {"orderLinkId": "ccxt-1"})
    out["open"] = ex.fetch_open_orders(SYMBOL)
    out["fetched"] = ex.fetch_open_order(out["placed"]["id"], SYMBOL)
    out["cancelled"] = ex.cancel_order(out["placed"]["id"], SYMBOL)
    out["open_after"] = ex.fetch_open_orders(SYMBOL)
    out["market"] = ex.create_order(SYMBOL, "market", "sell", 1)
    out["positions_after"] = ex.fetch_positions([SYMBOL])
    errors: dict[str, str] = {}
    for name, call in {
        "duplicate_link_id": lambda: ex.create_order(
            SYMBOL, "limit", "buy", 1, far, {"orderLinkId": "ccxt-1"}
        ),
        "reduce_only_on_wrong_side": lambda: ex.create_order(
            SYMBOL, "market", "sell", 1, None, {"reduceOnly": True}
        ),
        "bad_signature": lambda: _client(url, secret="wrong").fetch_balance(),
    }.items():
        try:
            call()
            errors[name] = "no error"
        except ccxt.BaseError as exc:
            errors[name] = type(exc).__name__ + ": " + str(exc)[:200]
    out["errors"] = errors
    return out


async def test_ccxt_reads_markets_and_runs_an_order_life_with_bybit_errors() -> None:
    async with open_sim(SimConfig(seed=43)) as sim:
        # the market stands still: the limit buy priced from the book read must rest
        sim.exchange.paused = True
        with trio.fail_after(60):
            out = await trio.to_thread.run_sync(_scenario, sim.rest_url)
    assert SYMBOL in out["markets"]
    assert out["ticker"]["last"] > 0
    assert out["book"]["bids"][0][0] < out["book"]["asks"][0][0]
    assert out["balance"]["USDT"]["total"] == 100_000
    assert out["positions_before"][0]["contracts"] == 0
    assert out["placed"]["id"]
    assert [o["id"] for o in out["open"]] == [out["placed"]["id"]]
    assert out["fetched"]["clientOrderId"] == "ccxt-1"
    assert out["open_after"] == []
    short = out["positions_after"][0]
    assert short["side"] == "short" and short["contracts"] == 1
    errors = out["errors"]
    # Bybit's retCodes arrive as ccxt's typed errors
    assert "110072" in errors["duplicate_link_id"], errors
    assert "110017" in errors["reduce_only_on_wrong_side"], errors
    assert errors["bad_signature"].startswith("AuthenticationError"), errors
