"""The simulator verifies signatures exactly as Bybit's reference describes (its vectors)."""

from __future__ import annotations

import httpx
import pytest
from trio_websocket import open_websocket_url

from scalper.bybit.auth import ws_auth_signature
from scalper.sim import SimConfig, open_sim
from scalper.sim.rest import verify_rest_signature

from .sim_helpers import get, hmac_hex, now_ms, post, recv, send

KEY, SECRET, TS, RECV = "TESTKEY123", "TESTSECRET456", "1700000000000", "5000"
BODY = (
    '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001",'
    '"price":"50000","timeInForce":"PostOnly","orderLinkId":"scalp-0001"}'
)
VECTORS = [
    ("category=linear&symbol=BTCUSDT",
     "97ef232703cf2832582c7db8df84cbb7fe75977e4f2e1f14d00f10601521c8b9"),
    ("accountType=UNIFIED", "c0b7d5fea134a194196a9ae6bb85d0fafc5d11fa84c44aad733b981ff899f0af"),
    (BODY, "1e676f3d394ed40739e18a259fbdc51608d64015c24001234153198153dcad91"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "signature"), VECTORS)
def test_reference_vectors_verify(payload: str, signature: str) -> None:
    kwargs = {"timestamp": TS, "api_key": KEY, "recv_window": RECV, "payload": payload}
    assert verify_rest_signature(SECRET, signature=signature, **kwargs)
    assert verify_rest_signature(SECRET, signature=signature.upper(), **kwargs)
    assert not verify_rest_signature(SECRET, signature=signature[:-1] + "0", **kwargs)
    assert not verify_rest_signature("other", signature=signature, **kwargs)
    assert not verify_rest_signature(
        SECRET, signature=signature, **{**kwargs, "payload": payload + " "}
    )


def test_ws_auth_reference_vector() -> None:
    assert ws_auth_signature(SECRET, 1700000001000) == (
        "ab1298f347cf096f366b9a202bf1c4f739b527fa79dcc4101ed234d59863c5dd"
    )


async def test_live_requests_signed_with_the_reference_recipe_are_accepted() -> None:
    async with (
        open_sim(SimConfig(seed=1, api_key=KEY, api_secret=SECRET)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        wallet = await get(
            http, "/v5/account/wallet-balance", {"accountType": "UNIFIED"}, key=KEY, secret=SECRET
        )
        assert wallet.json()["retCode"] == 0
        created = await post(http, "/v5/order/create", BODY, key=KEY, secret=SECRET)
        assert created.json()["retCode"] == 0
        assert created.json()["result"]["orderLinkId"] == "scalp-0001"
        async with open_websocket_url(sim.ws_private_url) as ws:
            expires = now_ms() + 5000
            signature = hmac_hex(SECRET, f"GET/realtime{expires}")
            await send(ws, {"op": "auth", "args": [KEY, expires, signature]})
            assert (await recv(ws))["success"] is True
