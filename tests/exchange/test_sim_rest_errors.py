"""Every refusal the simulator promises, provoked by a real bad request over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import get, now_ms, post


@pytest.fixture
async def client() -> AsyncIterator[tuple[Sim, httpx.AsyncClient]]:
    async with (
        open_sim(SimConfig(seed=5)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        yield sim, http


def _order(**over: object) -> dict:
    body = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.10",
        "price": "1000.00",
        "timeInForce": "GTC",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


async def test_unknown_and_missing_api_key_get_10003(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await get(
        http, "/v5/position/list", {"category": "linear", "symbol": "BTCUSDT"}, key="not-a-key"
    )
    assert reply.json()["retCode"] == 10003
    bare = await http.get("/v5/position/list?category=linear&symbol=BTCUSDT")
    assert bare.json()["retCode"] == 10003


async def test_bad_signature_gets_10004(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await get(
        http,
        "/v5/position/list",
        {"category": "linear", "symbol": "BTCUSDT"},
        secret="wrong-secret",
    )
    assert reply.json()["retCode"] == 10004
    # signing other bytes than those sent (a reordered query) is a bad signature too
    query = "symbol=BTCUSDT&category=linear"
    from .sim_helpers import auth_headers

    headers = auth_headers("category=linear&symbol=BTCUSDT")
    reply = await http.get(f"/v5/position/list?{query}", headers=headers)
    assert reply.json()["retCode"] == 10004


@pytest.mark.parametrize("offset_ms", [-60_000, +5_000])
async def test_timestamp_outside_recv_window_gets_10002(
    client: tuple[Sim, httpx.AsyncClient], offset_ms: int
) -> None:
    _, http = client
    reply = await get(
        http, "/v5/account/wallet-balance", {"accountType": "UNIFIED"}, ts=now_ms() + offset_ms
    )
    body = reply.json()
    assert body["retCode"] == 10002
    assert "recv_window" in body["retMsg"]


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"qty": "0.015"}, "qtyStep"),
        ({"qty": "0"}, "qty"),
        ({"price": "1000.005"}, "tickSize"),
        ({"symbol": "NOPEUSDT"}, "symbol"),
        ({"side": "Long"}, "side"),
        ({"orderType": "Stop"}, "orderType"),
        ({"qty": 0.1}, "qty"),  # wrong JSON type: Bybit sends numbers as strings
        ({"price": None}, "price"),
        ({"timeInForce": "GTD"}, "timeInForce"),
        ({"orderLinkId": "bad id with spaces"}, "orderLinkId"),
        ({"qty": "99999999"}, "maximum"),
        ({"reduceOnly": "maybe"}, "reduceOnly"),
    ],
)
async def test_bad_order_params_get_10001(
    client: tuple[Sim, httpx.AsyncClient], over: dict, needle: str
) -> None:
    _, http = client
    body = _order(**over)
    if "price" in over and over["price"] is None:
        body.pop("price", None)
    reply = await post(http, "/v5/order/create", body)
    assert reply.status_code == 200
    data = reply.json()
    assert data["retCode"] == 10001, data
    assert needle in data["retMsg"]


@pytest.mark.parametrize("raw", ['{"category": "linear", "symbol": ', "[1, 2]", "null", "\x00"])
async def test_malformed_body_gets_10001_never_500(
    client: tuple[Sim, httpx.AsyncClient], raw: str
) -> None:
    _, http = client
    reply = await post(http, "/v5/order/create", raw)
    assert reply.status_code == 200
    assert reply.json()["retCode"] == 10001


async def test_min_notional_gets_110094(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await post(
        http, "/v5/order/create", _order(symbol="DOGEUSDT", qty="1", price="0.10000")
    )
    assert reply.json()["retCode"] == 110094


async def test_insufficient_balance_gets_110007(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    # 1000 BTC at 10x needs ~9.5 M of margin; the wallet holds 100 k
    reply = await post(
        http, "/v5/order/create", _order(symbol="BTCUSDT", qty="1000.000", price="90000.00")
    )
    assert reply.json()["retCode"] == 110007


async def test_reduce_only_without_position_gets_110017(
    client: tuple[Sim, httpx.AsyncClient],
) -> None:
    _, http = client
    reply = await post(
        http, "/v5/order/create", _order(orderType="Market", price=None, reduceOnly=True)
    )
    assert reply.json()["retCode"] == 110017


async def test_duplicate_order_link_id_gets_110072(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    first = await post(http, "/v5/order/create", _order(orderLinkId="dup-1"))
    assert first.json()["retCode"] == 0
    second = await post(http, "/v5/order/create", _order(orderLinkId="dup-1"))
    assert second.json()["retCode"] == 110072


async def test_cancel_unknown_order_gets_110001(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await post(
        http,
        "/v5/order/cancel",
        {"category": "linear", "symbol": "ETHUSDT", "orderLinkId": "never"},
    )
    assert reply.json()["retCode"] == 110001


async def test_same_leverage_gets_110043(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    body = {"category": "linear", "symbol": "SOLUSDT", "buyLeverage": "5", "sellLeverage": "5"}
    assert (await post(http, "/v5/position/set-leverage", body)).json()["retCode"] == 0
    assert (await post(http, "/v5/position/set-leverage", body)).json()["retCode"] == 110043
    rows = (
        await get(http, "/v5/position/list", {"category": "linear", "symbol": "SOLUSDT"})
    ).json()["result"]["list"]
    assert rows[0]["leverage"] == "5"


async def test_order_rate_limit_gets_10006_with_reset_header(
    client: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = client
    # the venue's clock stands still for the twelve requests: the 1 s sliding window
    # holds them all however long a loaded machine takes to send them (signed at the
    # same instant, so the recv_window check agrees)
    frozen = sim.exchange.now_ms()
    sim.exchange.clock = lambda: frozen
    codes = []
    last = None
    for i in range(12):
        last = await post(
            http,
            "/v5/order/cancel",
            {"category": "linear", "symbol": "ETHUSDT", "orderLinkId": f"x{i}"},
            ts=frozen,
        )
        codes.append(last.json()["retCode"])
    assert codes[:10] == [110001] * 10  # within 10/s: a real answer
    assert codes[10:] == [10006, 10006]
    assert last is not None
    assert last.json()["retMsg"] == "Too many visits!"
    assert last.headers["X-Bapi-Limit"] == "10"
    assert last.headers["X-Bapi-Limit-Status"] == "0"
    # the window frees up 1 s after its oldest request
    assert int(last.headers["X-Bapi-Limit-Reset-Timestamp"]) == frozen + 1000


async def test_limit_headers_on_every_private_reply(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await get(http, "/v5/order/realtime", {"category": "linear", "symbol": "ETHUSDT"})
    assert reply.json()["retCode"] == 0
    assert reply.headers["X-Bapi-Limit"] == "50"
    assert reply.headers["X-Bapi-Limit-Status"] == "49"
    assert reply.headers["X-Bapi-Limit-Reset-Timestamp"].isdigit()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v5/order/realtime", {"category": "linear"}),
        ("/v5/position/list", {"category": "linear"}),
        ("/v5/account/wallet-balance", {"accountType": "CONTRACT"}),
        ("/v5/order/realtime", {"category": "linear", "symbol": "ETHUSDT", "limit": "500"}),
    ],
)
async def test_bad_query_params_get_10001(
    client: tuple[Sim, httpx.AsyncClient], path: str, params: dict
) -> None:
    _, http = client
    assert (await get(http, path, params)).json()["retCode"] == 10001


@pytest.mark.parametrize(
    ("qty", "price"),
    [
        ("1e30", "1000.00"),
        ("1e999999", "1000.00"),
        ("0.10", "1e999999"),
        ("0.10", "NaN"),
        ("١٢", "1000.00"),
        ("0.10", "-1000.00"),
        ("0.10", " 1000.00"),
    ],
)
async def test_odd_numbers_get_10001_never_500(
    client: tuple[Sim, httpx.AsyncClient], qty: str, price: str
) -> None:
    _, http = client
    reply = await post(http, "/v5/order/create", _order(qty=qty, price=price))
    assert reply.status_code == 200
    assert reply.json()["retCode"] == 10001


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v5/account/info", "unifiedMarginStatus", 5),
        ("/v5/user/query-api", "uta", 1),
        ("/v5/asset/coin/query-info", "rows", None),
    ],
)
async def test_account_discovery_for_generic_clients(
    client: tuple[Sim, httpx.AsyncClient], path: str, field: str, value: object
) -> None:
    _, http = client
    reply = (await get(http, path)).json()
    assert reply["retCode"] == 0
    assert field in reply["result"]
    if value is not None:
        assert reply["result"][field] == value
    assert (await http.get(path)).json()["retCode"] == 10003  # private: needs a key
