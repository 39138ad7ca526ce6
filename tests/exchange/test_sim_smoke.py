"""The simulator starts in-process, answers REST and streams a book (loopback, real time)."""

from __future__ import annotations

import httpx
import orjson
import trio
from trio_websocket import open_websocket_url

from scalper.sim import SimConfig, open_sim


async def test_open_sim_serves_rest_and_public_stream() -> None:
    with trio.fail_after(10):
        async with open_sim(SimConfig(seed=1)) as sim:
            assert sim.rest_url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=sim.rest_url) as client:
                reply = (await client.get("/v5/market/time")).json()
            assert reply["retCode"] == 0
            assert reply["result"]["timeSecond"].isdigit()
            async with open_websocket_url(sim.ws_public_url) as ws:
                await ws.send_message(
                    orjson.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}).decode()
                )
                ack = orjson.loads(await ws.get_message())
                snapshot = orjson.loads(await ws.get_message())
            assert ack["success"] is True
            assert snapshot["type"] == "snapshot"
            assert len(snapshot["data"]["b"]) == 50
