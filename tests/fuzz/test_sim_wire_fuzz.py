"""Fuzzing the simulator over the wire (issue 10.4): a running in-process simulator
(served by hypercorn in a thread of this process) gets arbitrary query strings, bodies,
headers and WebSocket frames. It must answer every HTTP request with Bybit's envelope and
a typed ``retCode`` (never a 500, never its internal-error safety net 10016), keep every
WebSocket open and answering, and its books must stay uncrossed with positive sizes.

The venue's own operations are fuzzed in-process by ``tests/exchange/test_sim_fuzz.py``;
this file goes through the ASGI layer, the signing check and the routing as a client does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import trio
import websocket  # websocket-client (pybit's), a sync client for a sync hypothesis test
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.sim import SimConfig, open_sim

KEY, SECRET = "sim-key", "sim-secret"
PATHS = ["/v5/market/time", "/v5/market/instruments-info", "/v5/market/tickers",
         "/v5/market/orderbook", "/v5/market/recent-trade", "/v5/market/kline",
         "/v5/order/create", "/v5/order/amend", "/v5/order/cancel", "/v5/order/cancel-all",
         "/v5/order/realtime", "/v5/order/history", "/v5/execution/list",
         "/v5/position/list", "/v5/position/set-leverage", "/v5/position/trading-stop",
         "/v5/position/closed-pnl", "/v5/account/wallet-balance", "/v5/account/info",
         "/v5/nosuch", "/v5/", "/v5/order/create/x"]  # fmt: skip
KEYS = ["category", "symbol", "side", "orderType", "qty", "price", "timeInForce",
        "orderLinkId", "reduceOnly", "positionIdx", "orderId", "stopLoss", "takeProfit",
        "slTriggerBy", "tpslMode", "buyLeverage", "sellLeverage", "limit", "cursor",
        "interval", "start", "end", "accountType", "settleCoin", "openOnly"]  # fmt: skip
WORDS = ["linear", "spot", "SOLUSDT", "XRPUSDT", "Buy", "Sell", "Market", "Limit", "IOC",
         "GTC", "PostOnly", "0.1", "1", "0", "-1", "1e9", "NaN", "", "MarkPrice", "Full",
         "UNIFIED", "USDT", "true", "x" * 60, "1e-20", "100000000000000000000"]  # fmt: skip
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),  # noqa: E501
    max_leaves=6,
)  # fmt: skip
params = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=6), st.sampled_from(WORDS) | json_values, max_size=8
)


class _Served:
    def __init__(self) -> None:
        self.url = ""
        self.ready = threading.Event()
        self.stop = threading.Event()

    async def main(self) -> None:
        async with open_sim(SimConfig(seed=5, rate=200)) as sim:
            self.url = sim.rest_url
            self.ready.set()
            # the stop comes from another thread (a threading.Event): polled
            while not self.stop.is_set():  # noqa: ASYNC110
                await trio.sleep(0.05)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    served = _Served()
    thread = threading.Thread(target=trio.run, args=(served.main,), daemon=True)
    thread.start()
    assert served.ready.wait(30), "the simulator did not start"
    try:
        yield served.url
    finally:
        served.stop.set()
        thread.join(15)


@pytest.fixture(scope="module")
def http(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        yield client


def _signed(payload: str, how: str) -> dict[str, str]:
    ts = str(time.time_ns() // 1_000_000)
    sign = hmac.new(SECRET.encode(), f"{ts}{KEY}5000{payload}".encode(), hashlib.sha256).hexdigest()
    if how == "none":
        return {}
    if how == "bad":
        sign = "0" * 64
    return {"X-BAPI-API-KEY": KEY, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": sign}  # fmt: skip


def _check_reply(reply: httpx.Response) -> None:
    assert reply.status_code != 500, reply.text[:300]
    assert reply.status_code < 500 or reply.status_code == 503, reply.status_code
    if reply.status_code == 200:
        body = reply.json()
        assert isinstance(body["retCode"], int) and isinstance(body["retMsg"], str)
        assert body["retCode"] != 10016, body  # the internal-error safety net stayed unused


def _check_books(http: httpx.Client) -> None:
    for symbol in ("SOLUSDT", "XRPUSDT"):
        book = http.get(
            "/v5/market/orderbook", params={"category": "linear", "symbol": symbol, "limit": 50}
        ).json()["result"]
        bids = [(float(p), float(q)) for p, q in book["b"]]
        asks = [(float(p), float(q)) for p, q in book["a"]]
        assert all(q > 0 and p > 0 for p, q in bids + asks)
        if bids and asks:
            assert bids[0][0] < asks[0][0], (bids[0], asks[0])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    path = draw(st.sampled_from(PATHS))
    posts = ("/v5/order/create", "/v5/order/amend", "/v5/order/cancel", "/v5/order/cancel-all",
             "/v5/position/set-leverage", "/v5/position/trading-stop")  # fmt: skip
    method = "POST" if path in posts else "GET"
    if draw(st.integers(0, 5)) == 0:  # now and then the wrong method
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    how = draw(st.sampled_from(["signed", "signed", "none", "bad"]))
    if method == "GET":
        if draw(st.booleans()):
            query = "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in draw(params).items())
        else:
            query = draw(st.text(max_size=40))
        payload = query
        body = b""
        target = f"{path}?{query}"
    else:
        payload = json.dumps(draw(params)) if draw(st.booleans()) else draw(st.text(max_size=60))
        body = payload.encode("utf-8", "surrogatepass")
        target = path
    headers = _signed(payload, how)
    if draw(st.integers(0, 9)) == 0:
        headers["X-BAPI-TIMESTAMP"] = draw(st.sampled_from(["", "x", "-1", "1e99", "9" * 30]))
    return method, target, body, headers


@FAST
@given(requests())
def test_rest_answers_any_request_with_a_typed_ret_code(
    http: httpx.Client, request_: tuple[str, str, bytes, dict[str, str]]
) -> None:
    method, target, body, headers = request_
    try:
        reply = http.request(method, target, content=body, headers=headers)
    except httpx.InvalidURL:
        return  # the client refused to send it; nothing reached the simulator
    _check_reply(reply)


frames = st.text(max_size=80) | json_values.map(json.dumps) | st.sampled_from([
    '{"op":"subscribe","args":["orderbook.50.SOLUSDT"]}',
    '{"op":"subscribe","args":["orderbook.1.NOPE", 5, null]}',
    '{"op":"unsubscribe","args":"x"}',
    '{"op":"auth","args":["sim-key", "1e99", "zz"]}',
    '{"op":"auth","args":[]}',
    '{"op":"subscribe","args":["order","execution","position","wallet"]}',
    '{"op":"ping","req_id":[1]}',
    '{"op":null}',
])  # fmt: skip


def _ws_round(url: str, sent: list[str]) -> None:
    ws = websocket.create_connection(url, timeout=10)
    try:
        for frame in sent:
            ws.send(frame)
        ws.send('{"op":"ping","req_id":"fuzz-end"}')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv())
            assert reply.get("ret_msg") != "error:internal error", reply
            if (
                reply.get("req_id") == "fuzz-end"
                or (reply.get("op") in ("pong", "ping")
                and (reply.get("req_id") == "fuzz-end"))
            ):
                return
        raise AssertionError("no pong after the fuzzed frames")
    finally:
        ws.close()


@FAST
@given(st.sampled_from(["public/linear", "private"]), st.lists(frames, min_size=1, max_size=5))
def test_ws_stays_open_and_answers_after_any_frames(
    sim_url: str, stream: str, sent: list[str]
) -> None:
    _ws_round(sim_url.replace("http://", "ws://") + f"/v5/{stream}", sent)


def test_books_stay_uncrossed_after_the_fuzzing(http: httpx.Client) -> None:
    # orders from the fuzzing above may rest in the books; the books must still be sane
    _check_books(http)
    assert http.get("/v5/market/time").json()["retCode"] == 0


@pytest.mark.slow
@DEEP
@given(requests())
def test_rest_any_request_deep(
    http: httpx.Client, request_: tuple[str, str, bytes, dict[str, str]]
) -> None:
    method, target, body, headers = request_
    try:
        reply = http.request(method, target, content=body, headers=headers)
    except httpx.InvalidURL:
        return
    _check_reply(reply)
    if time.monotonic() % 10 < 0.1:
        _check_books(http)


@pytest.mark.slow
@DEEP
@given(st.sampled_from(["public/linear", "private"]), st.lists(frames, min_size=1, max_size=8))
def test_ws_any_frames_deep(sim_url: str, stream: str, sent: list[str]) -> None:
    _ws_round(sim_url.replace("http://", "ws://") + f"/v5/{stream}", sent)
