"""An order's whole life over REST and the private stream, with Bybit's shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from trio_websocket import WebSocketConnection, open_websocket_url

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import assert_shape, get, post, private_auth, recv, recv_until, sample, send

TOPICS = ["order", "execution", "position", "wallet"]


async def test_execution_fast_push_has_bybits_shape() -> None:
    async with (
        open_sim(SimConfig(seed=12)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
        open_websocket_url(sim.ws_private_url) as ws,
    ):
        await private_auth(ws)
        await send(ws, {"op": "subscribe", "args": ["execution.fast.linear"]})
        assert (await recv(ws))["success"] is True
        body = {
            "category": "linear",
            "symbol": "ADAUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "50",
            "orderLinkId": "fast-1",
        }
        assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
        push = await recv(ws)
    expected = sample("ws_private_execution_fast")
    assert_shape(expected, push)
    assert set(push) == set(expected)  # no "id" on this topic
    assert push["data"][0]["orderLinkId"] == "fast-1"


@pytest.fixture
async def venue() -> AsyncIterator[tuple[Sim, httpx.AsyncClient, WebSocketConnection]]:
    async with (
        open_sim(SimConfig(seed=11)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
        open_websocket_url(sim.ws_private_url) as ws,
    ):
        assert (await private_auth(ws))["success"] is True
        await send(ws, {"req_id": "s1", "op": "subscribe", "args": TOPICS})
        ack = await recv(ws)
        assert ack["success"] is True and ack["op"] == "subscribe"
        yield sim, http, ws


async def _pushes(ws: WebSocketConnection, until_topic: str = "wallet") -> list[dict]:
    """Messages of one change, up to and including the ``wallet`` push."""
    out = []
    while True:
        msg = await recv(ws)
        out.append(msg)
        if msg.get("topic") == until_topic:
            return out


def _touch(sim: Sim, symbol: str) -> tuple[Decimal, Decimal]:
    book = sim.exchange.sm(symbol).book
    spec = sim.exchange.specs[symbol]
    return spec.price_of(book.bid_top), spec.price_of(book.ask_top)


async def test_resting_limit_then_cancel(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    sim, http, ws = venue
    bid, _ = _touch(sim, "ETHUSDT")
    price = str(bid - Decimal("50.00"))
    body = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.50",
        "price": price,
        "timeInForce": "GTC",
        "orderLinkId": "life-1",
    }
    created = (await post(http, "/v5/order/create", body)).json()
    assert created["retCode"] == 0
    assert_shape(sample("rest_order_create"), created)
    order_id = created["result"]["orderId"]

    pushes = await _pushes(ws)
    assert [m["topic"] for m in pushes] == ["order", "position", "wallet"]
    order = pushes[0]["data"][0]
    assert (order["orderId"], order["orderStatus"], order["orderLinkId"]) == (
        order_id,
        "New",
        "life-1",
    )
    assert_shape(sample("ws_private_order")["data"][0], order)
    assert_shape(sample("ws_private_position")["data"][0], pushes[1]["data"][0])
    assert_shape(sample("ws_private_wallet")["data"][0], pushes[2]["data"][0])
    assert float(pushes[2]["data"][0]["coin"][0]["totalOrderIM"]) > 0

    live = (
        await get(http, "/v5/order/realtime", {"category": "linear", "symbol": "ETHUSDT"})
    ).json()
    assert_shape(sample("rest_order_realtime"), live)
    assert [o["orderLinkId"] for o in live["result"]["list"]] == ["life-1"]
    assert live["result"]["list"][0]["leavesQty"] == "0.50"

    cancelled = (
        await post(
            http,
            "/v5/order/cancel",
            {"category": "linear", "symbol": "ETHUSDT", "orderLinkId": "life-1"},
        )
    ).json()
    assert cancelled["result"] == {"orderId": order_id, "orderLinkId": "life-1"}
    assert_shape(sample("rest_order_cancel"), cancelled)
    pushes = await _pushes(ws)
    assert pushes[0]["data"][0]["orderStatus"] == "Cancelled"
    assert pushes[0]["data"][0]["cancelType"] == "CancelByUser"

    open_now = (
        await get(http, "/v5/order/realtime", {"category": "linear", "symbol": "ETHUSDT"})
    ).json()
    assert open_now["result"]["list"] == []
    by_link = (
        await get(
            http,
            "/v5/order/realtime",
            {"category": "linear", "symbol": "ETHUSDT", "orderLinkId": "life-1"},
        )
    ).json()
    assert by_link["result"]["list"][0]["orderStatus"] == "Cancelled"
    history = (await get(http, "/v5/order/history", {"category": "linear", "limit": "5"})).json()
    assert_shape(sample("rest_order_history"), history)
    assert history["result"]["list"][0]["orderId"] == order_id


async def test_market_round_trip_realises_pnl(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    _sim, http, ws = venue
    body = {
        "category": "linear",
        "symbol": "SOLUSDT",
        "side": "Buy",
        "orderType": "Market",
        "qty": "10.0",
        "orderLinkId": "open-1",
    }
    assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
    pushes = await _pushes(ws)
    assert [m["topic"] for m in pushes] == ["order", "execution", "position", "wallet"]
    order = pushes[0]["data"][0]
    assert order["orderStatus"] == "Filled" and order["cumExecQty"] == "10.0"
    fill = pushes[1]["data"][0]
    assert_shape(sample("ws_private_execution")["data"][0], fill)
    assert fill["isMaker"] is False and fill["feeRate"] == "0.00055"
    position = pushes[2]["data"][0]
    assert (position["side"], position["size"]) == ("Buy", "10.0")
    assert Decimal(position["entryPrice"]) == Decimal(order["avgPrice"])

    rows = (
        await get(http, "/v5/position/list", {"category": "linear", "symbol": "SOLUSDT"})
    ).json()
    assert_shape(sample("rest_position_list"), rows)
    assert rows["result"]["list"][0]["size"] == "10.0"
    fills = (
        await get(http, "/v5/execution/list", {"category": "linear", "symbol": "SOLUSDT"})
    ).json()
    assert_shape(sample("rest_execution_list"), fills)
    assert fills["result"]["list"][0]["orderLinkId"] == "open-1"

    close = {
        "category": "linear",
        "symbol": "SOLUSDT",
        "side": "Sell",
        "orderType": "Market",
        "qty": "10.0",
        "reduceOnly": True,
        "orderLinkId": "close-1",
    }
    assert (await post(http, "/v5/order/create", close)).json()["retCode"] == 0
    pushes = await _pushes(ws)
    position = pushes[2]["data"][0]
    assert (position["side"], position["size"]) == ("", "0")
    fees = sum(Decimal(f["execFee"]) for f in pushes[1]["data"])
    assert Decimal(pushes[1]["data"][0]["closedSize"]) > 0
    wallet = (await get(http, "/v5/account/wallet-balance", {"accountType": "UNIFIED"})).json()
    assert_shape(sample("rest_account_wallet-balance"), wallet)
    coin = wallet["result"]["list"][0]["coin"][0]
    assert Decimal(coin["walletBalance"]) == Decimal(100_000) + Decimal(coin["cumRealisedPnl"])
    assert Decimal(coin["cumRealisedPnl"]) <= -fees  # a round trip through the spread loses


async def test_post_only_that_would_cross_is_cancelled(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    sim, http, ws = venue
    _, ask = _touch(sim, "ETHUSDT")
    body = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.10",
        "price": str(ask + Decimal("5.00")),
        "timeInForce": "PostOnly",
        "orderLinkId": "po-1",
    }
    reply = (await post(http, "/v5/order/create", body)).json()
    assert reply["retCode"] == 0  # accepted ...
    pushes = await _pushes(ws)
    order = pushes[0]["data"][0]
    assert order["orderStatus"] == "Cancelled"  # ... then cancelled, as Bybit does
    assert order["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
    assert order["cumExecQty"] == "0.00"


async def test_large_market_order_walks_the_book(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    sim, http, ws = venue
    sim.exchange.paused = True  # the levels read here must still be there at the create
    book = sim.exchange.sm("ETHUSDT").book
    spec = sim.exchange.specs["ETHUSDT"]
    top3 = book.top_asks(3)
    qty = spec.qty_of(sum(n for _, n in top3[:2]) + 1)
    body = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Market",
        "qty": str(qty),
    }
    assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
    pushes = await _pushes(ws)
    fills = pushes[1]["data"]
    assert len(fills) >= 3  # three levels touched
    prices = [Decimal(f["execPrice"]) for f in fills]
    assert prices == sorted(prices) and prices[0] < prices[-1]
    order = pushes[0]["data"][0]
    assert prices[0] < Decimal(order["avgPrice"]) < prices[-1]


async def test_amend_and_cancel_all(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    sim, http, ws = venue
    bid, _ = _touch(sim, "ETHUSDT")
    for i in range(2):
        body = {
            "category": "linear",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.10",
            "price": str(bid - Decimal("80.00")),
            "orderLinkId": f"am-{i}",
        }
        assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
        await _pushes(ws)
    amend = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "orderLinkId": "am-0",
        "qty": "0.20",
        "price": str(bid - Decimal("90.00")),
    }
    reply = (await post(http, "/v5/order/amend", amend)).json()
    assert_shape(sample("rest_order_amend"), reply)
    order = (await _pushes(ws))[0]["data"][0]
    assert (order["qty"], order["price"]) == ("0.20", str(bid - Decimal("90.00")))
    reply = (
        await post(http, "/v5/order/cancel-all", {"category": "linear", "settleCoin": "USDT"})
    ).json()
    assert_shape(sample("rest_order_cancel-all"), reply)
    assert sorted(o["orderLinkId"] for o in reply["result"]["list"]) == ["am-0", "am-1"]
    assert reply["result"]["success"] == "1"


async def test_resting_order_fills_when_market_trades_through(
    venue: tuple[Sim, httpx.AsyncClient, WebSocketConnection],
) -> None:
    sim, http, ws = venue
    # the market stands still until the jump: a step between reading the touch and
    # placing the order could make the bid marketable (a taker fill, not a maker one)
    sim.exchange.paused = True
    bid, _ = _touch(sim, "XRPUSDT")
    body = {
        "category": "linear",
        "symbol": "XRPUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "100",
        "price": str(bid),
        "orderLinkId": "maker-1",
    }
    assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
    await _pushes(ws)
    sim.exchange.price_jump("XRPUSDT", -1.0)  # the market falls through our bid
    fill = await recv_until(ws, lambda m: m.get("topic") == "execution")
    assert fill["data"][0]["isMaker"] is True
    assert fill["data"][0]["feeRate"] == "0.0002"
    assert fill["data"][0]["execPrice"] == str(bid)
