"""Whatever a client sends, the venue answers with a Bybit retCode, never a crash."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlencode

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.sim import Exchange, VenueError
from scalper.sim.rest import RestApi
from scalper.sim.specs import DEFAULT_SPECS

KEYS = ["category", "symbol", "side", "orderType", "qty", "price", "timeInForce", "orderLinkId",
        "reduceOnly", "closeOnTrigger", "positionIdx", "orderId", "buyLeverage", "sellLeverage",
        "baseCoin", "settleCoin", "orderFilter", "takeProfit", "stopLoss"]  # fmt: skip
PLAUSIBLE = ["linear", "ETHUSDT", "BTCUSDT", "Buy", "Sell", "Market", "Limit", "GTC", "IOC",
             "FOK", "PostOnly", "0.10", "0.01", "1", "0", "-1", "3400.00", "1e9", "NaN", "",
             "USDT", "ETH", "x" * 40, "5", "100.00"]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=12) | st.sampled_from(PLAUSIBLE),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)  # fmt: skip
params = st.dictionaries(
    st.sampled_from(KEYS), json_values | st.sampled_from(PLAUSIBLE), max_size=10
)


def _exchange() -> Exchange:
    clock = itertools.count(1_700_000_000_000, 1)
    return Exchange(DEFAULT_SPECS, seed=1, rate=500, clock=lambda: next(clock),
                    credentials={"k": "s"})  # fmt: skip


EX = _exchange()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["create", "amend", "cancel", "cancel_all", "leverage"]), params)
def test_venue_operations_refuse_with_a_ret_code(op: str, body: dict[str, Any]) -> None:
    account = EX.accounts["k"]
    call = {
        "create": EX.create_order,
        "amend": EX.amend_order,
        "cancel": EX.cancel_order,
        "cancel_all": EX.cancel_all,
        "leverage": EX.set_leverage,
    }[op]
    try:
        call(account, body)
    except VenueError as exc:
        assert isinstance(exc.code, int) and exc.msg


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["/v5/market/tickers", "/v5/market/orderbook", "/v5/market/kline",
                     "/v5/market/instruments-info", "/v5/market/recent-trade"]),
    st.dictionaries(st.sampled_from(["category", "symbol", "limit", "interval", "cursor",
                                     "start", "end", "status", "baseCoin"]),
                    st.text(max_size=8) | st.sampled_from(PLAUSIBLE), max_size=6),
)  # fmt: skip
def test_public_endpoints_answer_any_query_with_an_envelope(path: str, query: dict) -> None:
    reply = RestApi(EX).handle("GET", path, urlencode(query).encode(), {}, b"")
    assert reply.status == 200
    assert b'"retCode"' in reply.body
    assert b'"retCode":10016' not in reply.body  # the internal-error safety net stayed unused


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["realtime", "history", "executions", "positions", "wallet"]),
    st.dictionaries(st.sampled_from(["category", "symbol", "limit", "orderId", "orderLinkId",
                                     "openOnly", "cursor", "settleCoin", "baseCoin",
                                     "accountType", "coin", "startTime", "orderStatus"]),
                    st.text(max_size=8) | st.sampled_from(PLAUSIBLE), max_size=6),
)  # fmt: skip
def test_private_queries_refuse_with_a_ret_code(handler: str, query: dict) -> None:
    api = RestApi(EX)
    group = api.account if handler in ("positions", "wallet") else api.orders
    try:
        getattr(group, handler)(EX.accounts["k"], query)
    except VenueError as exc:
        assert isinstance(exc.code, int)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=60)
    | st.sampled_from(
        [
            '{"op":"subscribe","args":[null]}',
            '{"op":"auth","args":[1,2,3]}',
            '{"op":"ping","req_id":{}}',
            '{"op":"subscribe","args":["tickers.X"]}',
        ]
    )
)
def test_ws_sessions_answer_any_frame(text: str) -> None:
    from scalper.sim.faults import FaultRegistry
    from scalper.sim.outbox import Outbox
    from scalper.sim.ws import PrivateSession, PublicSession, WsContext

    ctx = WsContext(EX, FaultRegistry(), idle_timeout_s=60, now_s=lambda: 0.0)
    for session_type in (PublicSession, PrivateSession):
        box = Outbox()
        session = session_type(ctx, box, "c1")
        session.on_text(text)
        session.close()
        replies = [orjson.loads(frame) for frame in box.queue]
        assert replies  # every frame gets an answer
        assert all(r.get("ret_msg") != "error:internal error" for r in replies)
