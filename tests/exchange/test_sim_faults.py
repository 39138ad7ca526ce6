"""Every fault kind, switched on at run time, observed by a plain client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import (
    assert_shape,
    auth_headers,
    get,
    now_ms,
    post,
    private_auth,
    recv,
    recv_until,
    sample,
    send,
)


@pytest.fixture
async def env() -> AsyncIterator[tuple[Sim, httpx.AsyncClient]]:
    async with (
        open_sim(SimConfig(seed=31, rate=800)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        yield sim, http


async def _fault(http: httpx.AsyncClient, fault: dict) -> httpx.Response:
    return await http.post("/sim/faults", content=orjson.dumps(fault))


async def test_ws_disconnect_drops_only_the_named_stream(
    env: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = env
    async with (
        open_websocket_url(sim.ws_public_url) as pub,
        open_websocket_url(sim.ws_private_url) as prv,
    ):
        assert (await private_auth(prv))["success"] is True
        reply = await _fault(http, {"kind": "ws_disconnect", "stream": "public"})
        assert reply.status_code == 200 and reply.json()["closed"] == 1
        with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
            while True:
                await pub.get_message()
        assert closed.value.reason.code == 1001
        assert "ws_disconnect" in (closed.value.reason.reason or "")
        await send(prv, {"req_id": "x", "op": "ping"})
        assert (await recv(prv))["op"] == "pong"  # the private stream is untouched


async def test_ws_silence_swallows_pings(env: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, _http = env
    async with open_websocket_url(sim.ws_public_url) as ws:
        sim.inject({"kind": "ws_silence", "count": 1})
        await send(ws, {"req_id": "1", "op": "ping"})
        await send(ws, {"req_id": "2", "op": "ping"})
        pong = await recv(ws)
        assert pong["req_id"] == "2"  # the first ping went unanswered
        sim.inject({"kind": "ws_silence", "seconds": 60, "stream": "public"})
        await send(ws, {"req_id": "3", "op": "ping"})
        with trio.move_on_after(0.3) as quiet:
            await recv(ws)
        assert quiet.cancelled_caught


@pytest.mark.parametrize("variant", ["json", "types"])
async def test_malformed_ws_breaks_the_next_messages(
    env: tuple[Sim, httpx.AsyncClient], variant: str
) -> None:
    sim, _ = env
    # paused until the fault is armed: no delta queued before it can pass unbroken
    sim.exchange.paused = True
    async with open_websocket_url(sim.ws_public_url) as ws:
        await send(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        await recv(ws)
        await recv(ws)  # snapshot
        sim.inject({"kind": "malformed_ws", "count": 2, "variant": variant})
        sim.exchange.paused = False
        with trio.fail_after(10):
            texts = [await ws.get_message() for _ in range(3)]
    broken = []
    for text in texts[:2]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            broken.append("json")
            continue
        if not isinstance(msg["ts"], int) or not isinstance(msg["data"], dict):
            broken.append("types")
    assert broken == [variant, variant]
    assert isinstance(orjson.loads(texts[2])["data"]["u"], int)  # then back to normal


async def test_out_of_order_ws_sends_an_update_id_going_backwards(
    env: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, _ = env
    async with open_websocket_url(sim.ws_public_url) as ws:
        await send(ws, {"op": "subscribe", "args": ["orderbook.50.ETHUSDT"]})
        await recv(ws)
        last = (await recv(ws))["data"]["u"]
        sim.inject({"kind": "out_of_order_ws"})
        msg = await recv_until(ws, lambda m: m.get("type") == "delta")
        assert msg["data"]["u"] < last + 1


async def test_http_status_latency_and_ret_code(env: tuple[Sim, httpx.AsyncClient]) -> None:
    _sim, http = env
    await _fault(
        http, {"kind": "http_status", "status": 503, "count": 2, "path": "/v5/market/time"}
    )
    statuses = [(await http.get("/v5/market/time")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]

    await _fault(http, {"kind": "latency", "ms": 3000, "path": "/v5/market/time", "count": 1})
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/v5/market/time", timeout=0.3)  # the client gives up first
    assert (await http.get("/v5/market/time")).status_code == 200

    await _fault(
        http,
        {
            "kind": "ret_code",
            "path": "/v5/order/realtime",
            "code": 10006,
            "count": 1,
            "reset_ms": 400,
        },
    )
    limited = await get(http, "/v5/order/realtime", {"category": "linear", "symbol": "BTCUSDT"})
    assert limited.json()["retCode"] == 10006
    assert int(limited.headers["X-Bapi-Limit-Reset-Timestamp"]) > now_ms()
    again = await get(http, "/v5/order/realtime", {"category": "linear", "symbol": "BTCUSDT"})
    assert again.json()["retCode"] == 0

    await _fault(http, {"kind": "ret_code", "path": "/v5/market/time", "code": 10002})
    assert (await http.get("/v5/market/time")).json()["retCode"] == 10002


async def test_timeout_creates_the_order_but_never_answers(
    env: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = env
    sim.inject({"kind": "timeout"})
    bid = sim.exchange.specs["ETHUSDT"].price_str(sim.exchange.sm("ETHUSDT").book.bid_top - 5000)
    body = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.10",
        "price": bid,
        "orderLinkId": "held-1",
    }
    text = orjson.dumps(body).decode()
    with pytest.raises(httpx.ReadTimeout):  # the client gives up ...
        await http.post("/v5/order/create", content=text, timeout=0.5, headers=_signed(text))
    # ... but the order was created
    found = await get(
        http,
        "/v5/order/realtime",
        {"category": "linear", "symbol": "ETHUSDT", "orderLinkId": "held-1"},
    )
    assert [o["orderStatus"] for o in found.json()["result"]["list"]] == ["New"]


def _signed(payload: str) -> dict[str, str]:
    return {**auth_headers(payload), "Content-Type": "application/json"}


async def test_drop_private_push_loses_pushes_not_orders(
    env: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = env
    async with open_websocket_url(sim.ws_private_url) as ws:
        await private_auth(ws)
        await send(ws, {"op": "subscribe", "args": ["order", "wallet"]})
        await recv(ws)
        await _fault(http, {"kind": "drop_private_push", "count": 1})
        body = {
            "category": "linear",
            "symbol": "XRPUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "10",
        }
        assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
        first = await recv(ws)
        assert first["topic"] == "wallet"  # the order push was lost
    state = (await http.get("/sim/state")).json()
    assert state["positions"][0]["symbol"] == "XRPUSDT"


async def test_close_position_from_outside(env: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = env
    async with open_websocket_url(sim.ws_private_url) as ws:
        await private_auth(ws)
        await send(ws, {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
        await recv(ws)
        body = {
            "category": "linear",
            "symbol": "SOLUSDT",
            "side": "Sell",
            "orderType": "Market",
            "qty": "3.0",
        }
        assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
        await recv_until(ws, lambda m: m.get("topic") == "wallet")
        reply = await _fault(http, {"kind": "close_position", "symbol": "SOLUSDT"})
        assert reply.json()["closed"] == 1
        order = await recv(ws)
        assert order["topic"] == "order" and order["data"][0]["reduceOnly"] is True
        position = await recv_until(ws, lambda m: m.get("topic") == "position")
        assert position["data"][0]["size"] == "0"
    rows = (
        await get(http, "/v5/position/list", {"category": "linear", "symbol": "SOLUSDT"})
    ).json()
    assert rows["result"]["list"][0]["side"] == ""


async def test_price_jump_moves_the_ticker(env: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = env
    sim.exchange.paused = True
    params = {"category": "linear", "symbol": "DOGEUSDT"}
    before = Decimal(
        (await http.get("/v5/market/tickers", params=params)).json()["result"]["list"][0][
            "bid1Price"
        ]
    )
    sim.inject({"kind": "price_jump", "symbol": "DOGEUSDT", "pct": -5})
    after = Decimal(
        (await http.get("/v5/market/tickers", params=params)).json()["result"]["list"][0][
            "bid1Price"
        ]
    )
    assert after < before * Decimal("0.97")


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "meteor"},
        {"kind": "latency"},
        {"kind": "http_status", "status": 200},
        {"kind": "price_jump", "symbol": "NOPEUSDT", "pct": 1},
        {"kind": "price_jump", "symbol": "BTCUSDT"},
        {"kind": "ret_code", "code": "10006"},
        {"kind": "ws_disconnect", "stream": "both"},
        {"kind": "timeout", "count": 0},
        {"kind": "malformed_ws", "colour": "red"},
        ["ws_disconnect"],
    ],
)
async def test_bad_fault_requests_get_400_with_a_reason(
    env: tuple[Sim, httpx.AsyncClient], fault: object
) -> None:
    sim, http = env
    reply = await _fault(http, fault)  # type: ignore[arg-type]
    assert reply.status_code == 400
    assert reply.json()["error"]
    with pytest.raises(ValueError):
        sim.inject(fault)  # type: ignore[arg-type]
    bad_json = await http.post("/sim/faults", content=b"{nope")
    assert bad_json.status_code == 400


async def test_sim_state_rows_have_bybits_shapes(env: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = env
    # the market stands still: the two state reads below must see the same mark prices
    sim.exchange.paused = True
    bid = sim.exchange.specs["ETHUSDT"].price_str(sim.exchange.sm("ETHUSDT").book.bid_top - 3000)
    for body in (
        {
            "category": "linear",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.50",
        },
        {
            "category": "linear",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.50",
            "price": bid,
        },
    ):
        assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
    state = (await http.get("/sim/state")).json()
    assert state == sim.state()
    assert set(state) == {"positions", "open_orders", "order_history", "wallet"}
    assert_shape(sample("rest_position_list")["result"]["list"][0], state["positions"][0])
    assert_shape(sample("rest_order_realtime")["result"]["list"][0], state["open_orders"][0])
    assert_shape(sample("rest_order_history")["result"]["list"][0], state["order_history"][0])
    assert_shape(sample("rest_account_wallet-balance")["result"]["list"][0], state["wallet"])
    assert len(state["order_history"]) == 2


async def test_clear_forgets_pending_faults_and_unknown_control_paths_404(
    env: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = env
    await _fault(http, {"kind": "http_status", "status": 500, "count": 5})
    await _fault(http, {"kind": "drop_private_push", "count": 5})
    assert (await _fault(http, {"kind": "clear"})).status_code == 200
    assert (await http.get("/v5/market/time")).status_code == 200
    assert sim.exchange.private.drop == 0
    assert (await http.get("/sim/nothing")).status_code == 404
