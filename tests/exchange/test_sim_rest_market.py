"""Market-data REST of the simulator: Bybit's shapes and types, paging, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import assert_shape, sample


@pytest.fixture
async def client() -> AsyncIterator[tuple[Sim, httpx.AsyncClient]]:
    async with (
        open_sim(SimConfig(seed=3)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        yield sim, http


async def _get(http: httpx.AsyncClient, path: str, **params: str) -> dict:
    reply = await http.get(path, params=params)
    assert reply.status_code == 200
    return reply.json()


@pytest.mark.parametrize(
    ("path", "params", "sample_name"),
    [
        ("/v5/market/time", {}, "rest_market_time"),
        (
            "/v5/market/instruments-info",
            {"category": "linear", "symbol": "BTCUSDT"},
            "rest_market_instruments-info_linear",
        ),
        (
            "/v5/market/tickers",
            {"category": "linear", "symbol": "BTCUSDT"},
            "rest_market_tickers_linear",
        ),
        (
            "/v5/market/orderbook",
            {"category": "linear", "symbol": "BTCUSDT"},
            "rest_market_orderbook",
        ),
        (
            "/v5/market/recent-trade",
            {"category": "linear", "symbol": "BTCUSDT", "limit": "3"},
            "rest_market_recent-trade",
        ),
        (
            "/v5/market/kline",
            {"category": "linear", "symbol": "BTCUSDT", "interval": "1"},
            "rest_market_kline",
        ),
    ],
)
async def test_market_replies_have_bybits_shape(
    client: tuple[Sim, httpx.AsyncClient], path: str, params: dict, sample_name: str
) -> None:
    sim, http = client
    sim.exchange.advance(sim.exchange.now_ms() - 100)
    for _ in range(50):
        sim.exchange.step(sim.exchange.now_ms())
    reply = await _get(http, path, **params)
    assert reply["retCode"] == 0
    assert_shape(sample(sample_name), reply)


async def test_instruments_page_with_cursor(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    seen: list[str] = []
    cursor = ""
    while True:
        params = {"category": "linear", "limit": "5"}
        if cursor:
            params["cursor"] = cursor
        result = (await _get(http, "/v5/market/instruments-info", **params))["result"]
        seen += [row["symbol"] for row in result["list"]]
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 8
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"} <= set(seen)


async def test_tickers_list_every_symbol_with_turnover(
    client: tuple[Sim, httpx.AsyncClient],
) -> None:
    _, http = client
    rows = (await _get(http, "/v5/market/tickers", category="linear"))["result"]["list"]
    assert len(rows) >= 8
    movers = [
        r
        for r in rows
        if r["symbol"] not in ("BTCUSDT", "ETHUSDT") and float(r["turnover24h"]) > 10e6
    ]
    assert len(movers) >= 5  # the scanner has a real choice
    for row in rows:
        assert float(row["bid1Price"]) < float(row["ask1Price"])


async def test_orderbook_is_sorted_and_limited(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    result = (
        await _get(http, "/v5/market/orderbook", category="linear", symbol="ETHUSDT", limit="200")
    )["result"]
    bids = [float(p) for p, _ in result["b"]]
    asks = [float(p) for p, _ in result["a"]]
    assert len(bids) == len(asks) == 200
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/v5/market/tickers", {"category": "linear", "symbol": "NOPEUSDT"}, "symbol"),
        ("/v5/market/orderbook", {"category": "linear"}, "symbol"),
        (
            "/v5/market/orderbook",
            {"category": "linear", "symbol": "BTCUSDT", "limit": "x"},
            "limit",
        ),
        ("/v5/market/tickers", {}, "category"),
        ("/v5/market/orderbook", {"category": "spot", "symbol": "BTCUSDT"}, "category"),
        (
            "/v5/market/kline",
            {"category": "linear", "symbol": "BTCUSDT", "interval": "7"},
            "interval",
        ),
    ],
)
async def test_bad_market_params_get_10001(
    client: tuple[Sim, httpx.AsyncClient], path: str, params: dict, needle: str
) -> None:
    _, http = client
    reply = await _get(http, path, **params)
    assert reply["retCode"] == 10001
    assert needle in reply["retMsg"]
    assert set(reply) == {"retCode", "retMsg", "result", "retExtInfo", "time"}


async def test_unknown_path_is_404_with_envelope(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    reply = await http.get("/v5/market/nothing-here")
    assert reply.status_code == 404
    assert reply.json()["retCode"] == 10017


@pytest.mark.parametrize("category", ["spot", "inverse", "option"])
async def test_other_categories_list_nothing(
    client: tuple[Sim, httpx.AsyncClient], category: str
) -> None:
    _, http = client
    for path in ("/v5/market/instruments-info", "/v5/market/tickers"):
        reply = await _get(http, path, category=category)
        assert (reply["retCode"], reply["result"]["list"]) == (0, [])


async def test_kline_has_a_history_newest_first(client: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = client
    params = {"category": "linear", "symbol": "SOLUSDT", "interval": "1", "limit": "200"}
    rows = (await _get(http, "/v5/market/kline", **params))["result"]["list"]
    assert len(rows) == 200
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert all(b - a == 60_000 for a, b in zip(starts[1:], starts, strict=False))
    for _, o, h, lo, c, _, _ in rows:
        assert float(lo) <= min(float(o), float(c)) <= max(float(o), float(c)) <= float(h)
    hourly = await _get(http, "/v5/market/kline", **{**params, "interval": "60", "limit": "3"})
    assert len(hourly["result"]["list"]) == 3
    window = {**params, "start": str(starts[10]), "end": str(starts[5])}
    assert len((await _get(http, "/v5/market/kline", **window))["result"]["list"]) == 6
