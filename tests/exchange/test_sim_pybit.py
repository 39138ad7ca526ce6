"""pybit's unmodified HTTP client, pointed at the simulator, trades the whole order life.

pybit is synchronous (requests), so it runs in a worker thread while the simulator keeps
serving on the trio loop.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio

from scalper.sim import SimConfig, open_sim

pybit_http = pytest.importorskip("pybit.unified_trading")


def _session(url: str, secret: str = "sim-secret") -> Any:
    session = pybit_http.HTTP(testnet=False, api_key="sim-key", api_secret=secret)
    session.endpoint = url
    return session


def _scenario(url: str) -> dict[str, Any]:
    s = _session(url)
    out: dict[str, Any] = {}
    out["instruments"] = s.get_instruments_info(category="linear")
    out["tickers"] = s.get_tickers(category="linear", symbol="ETHUSDT")
    out["book"] = s.get_orderbook(category="linear", symbol="ETHUSDT", limit=50)
    out["wallet"] = s.get_wallet_balance(accountType="UNIFIED")
    bid = Decimal(out["book"]["result"]["b"][0][0])
    price = str(bid - Decimal("40.00"))
    out["placed"] = s.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.10",
        price=price,
        timeInForce="GTC",
        orderLinkId="pybit-1",
    )
    out["open"] = s.get_open_orders(category="linear", symbol="ETHUSDT")
    out["cancelled"] = s.cancel_order(category="linear", symbol="ETHUSDT", orderLinkId="pybit-1")
    out["market"] = s.place_order(
        category="linear", symbol="ETHUSDT", side="Sell", orderType="Market", qty="0.10"
    )
    out["positions"] = s.get_positions(category="linear", symbol="ETHUSDT")
    out["history"] = s.get_order_history(category="linear", symbol="ETHUSDT")
    return out


async def test_pybit_reads_markets_and_runs_an_order_life() -> None:
    async with open_sim(SimConfig(seed=41)) as sim:
        with trio.fail_after(30):
            out = await trio.to_thread.run_sync(_scenario, sim.rest_url)
    assert all(reply["retCode"] == 0 for reply in out.values())
    assert len(out["instruments"]["result"]["list"]) >= 8
    assert out["tickers"]["result"]["list"][0]["symbol"] == "ETHUSDT"
    assert len(out["book"]["result"]["b"]) == 50
    assert out["wallet"]["result"]["list"][0]["accountType"] == "UNIFIED"
    assert out["placed"]["result"]["orderLinkId"] == "pybit-1"
    assert [o["orderLinkId"] for o in out["open"]["result"]["list"]] == ["pybit-1"]
    assert out["cancelled"]["result"]["orderLinkId"] == "pybit-1"
    position = out["positions"]["result"]["list"][0]
    assert (position["side"], position["size"]) == ("Sell", "0.10")
    statuses = {o["orderLinkId"]: o["orderStatus"] for o in out["history"]["result"]["list"]}
    assert statuses["pybit-1"] == "Cancelled"


def _bad_requests(url: str) -> dict[str, str]:
    from pybit.exceptions import InvalidRequestError

    errors: dict[str, str] = {}
    cases = {
        "qty_step": lambda s: s.place_order(
            category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty="0.015"
        ),
        "dup": lambda s: [
            s.place_order(
                category="linear",
                symbol="ETHUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.10",
                price="100.00",
                orderLinkId="dup-p",
            )
            for _ in range(2)
        ],
        "reduce": lambda s: s.place_order(
            category="linear",
            symbol="SOLUSDT",
            side="Sell",
            orderType="Market",
            qty="1.0",
            reduceOnly=True,
        ),
    }
    session = _session(url)
    for name, call in cases.items():
        try:
            call(session)
        except InvalidRequestError as exc:
            errors[name] = str(exc.status_code)
    bad = _session(url, secret="wrong")
    try:
        bad.get_positions(category="linear", symbol="ETHUSDT")
    except InvalidRequestError as exc:
        errors["sign"] = str(exc.status_code)
    return errors


async def test_pybit_gets_bybits_error_codes() -> None:
    async with open_sim(SimConfig(seed=42)) as sim:
        with trio.fail_after(30):
            errors = await trio.to_thread.run_sync(_bad_requests, sim.rest_url)
    assert errors == {"qty_step": "10001", "dup": "110072", "reduce": "110017", "sign": "10004"}


def _stops(url: str, stop: str, wrong: str) -> dict[str, Any]:
    s = _session(url)
    out: dict[str, Any] = {}
    out["open"] = s.place_order(
        category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty="0.20"
    )
    out["stop"] = s.set_trading_stop(
        category="linear",
        symbol="ETHUSDT",
        positionIdx=0,
        tpslMode="Full",
        stopLoss=stop,
        slTriggerBy="MarkPrice",
        slOrderType="Market",
    )
    out["positions"] = s.get_positions(category="linear", symbol="ETHUSDT")
    from pybit.exceptions import InvalidRequestError

    try:
        s.set_trading_stop(category="linear", symbol="ETHUSDT", positionIdx=0, stopLoss=wrong)
    except InvalidRequestError as exc:
        out["wrong"] = (exc.status_code, exc.message)
    out["close"] = s.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Sell",
        orderType="Market",
        qty="0.20",
        reduceOnly=True,
    )
    out["closed_pnl"] = s.get_closed_pnl(category="linear", symbol="ETHUSDT", limit=10)
    return out


async def test_pybit_sets_a_trading_stop_and_reads_closed_pnl() -> None:
    async with open_sim(SimConfig(seed=43)) as sim:
        sim.exchange.paused = True
        mark = sim.exchange.mark("ETHUSDT")
        stop = str((mark * Decimal("0.98")).quantize(Decimal("0.01")))
        wrong = str((mark * Decimal("1.02")).quantize(Decimal("0.01")))
        with trio.fail_after(30):
            out = await trio.to_thread.run_sync(_stops, sim.rest_url, stop, wrong)
    assert out["stop"]["retCode"] == 0 and out["stop"]["result"] == {}
    assert out["positions"]["result"]["list"][0]["stopLoss"] == stop
    code, message = out["wrong"]
    assert code == 10001 and "should lower than base_price" in message
    rows = out["closed_pnl"]["result"]["list"]
    assert [r["orderId"] for r in rows] == [out["close"]["result"]["orderId"]]
    assert rows[0]["side"] == "Sell" and rows[0]["closedSize"] == "0.20"
