"""BybitRest against a scripted fake Bybit in ``httpx.MockTransport``.

The fake checks every signature over the exact bytes received and the recv-window
rule, keeps orders by orderLinkId (refusing duplicates with 110072, like Bybit), and
plays scripted faults per path. Time is trio's MockClock (``autojump_clock``): the
client's wall clock is derived from it, so backoffs and rate-limit waits take no real
time and their virtual durations can be checked.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from loguru import logger

from scalper.bybit.auth import rest_signature
from scalper.bybit.backoff import backoff_delay
from scalper.bybit.errors import (
    AmbiguousOutcome,
    AuthError,
    BybitError,
    DuplicateOrder,
    HTTPStatusError,
    InsufficientBalance,
    NetworkError,
    OrderAlreadyFinal,
    OrderNotFound,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerBusy,
)
from scalper.bybit.rest import BybitRest, Credentials, RetryPolicy
from scalper.core.model import (
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

KEY = "test-key-123"
SECRET = "super-secret-456"
BASE_MS = 1_700_000_000_000

Fault = Callable[[httpx.Request, "FakeBybit"], httpx.Response]


def trio_ms() -> int:
    return BASE_MS + int(trio.current_time() * 1000)


def envelope(result: Any = None, code: int = 0, msg: str = "OK", **headers: str) -> httpx.Response:
    body = {
        "retCode": code,
        "retMsg": msg,
        "result": result or {},
        "retExtInfo": {},
        "time": trio_ms(),
    }
    return httpx.Response(200, content=json.dumps(body).encode(), headers=headers)


class FakeBybit:
    """A tiny, strict Bybit: signatures, recv window, orders by orderLinkId, faults."""

    def __init__(self, *, skew_ms: int = 0, dedup: bool = True) -> None:
        self.skew_ms = skew_ms
        #: refuse a reused orderLinkId with 110072 (Bybit does); off = worst case
        self.dedup = dedup
        self.orders: dict[str, dict[str, Any]] = {}
        self.history_only: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.create_times: list[float] = []
        self.signatures: list[str] = []
        #: (path, X-BAPI-TIMESTAMP, body) of every signed request
        self.signed: list[tuple[str, int, bytes]] = []
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.next_id = 1000

    def server_ms(self) -> int:
        return trio_ms() + self.skew_ms

    def script(self, path: str, *faults: Fault) -> None:
        self.faults[path].extend(faults)

    # -------------------------------------------------------------- transport

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path))
        if path == "/v5/market/time" and self.faults.get(path):
            return self.faults[path].popleft()(request, self)
        if path == "/v5/market/time":
            ms = self.server_ms()
            return envelope({"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)})
        public = path.startswith("/v5/market/")
        if not public:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
        queue = self.faults.get(path)
        if queue:
            return queue.popleft()(request, self)
        return self.route(request)

    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        h = request.headers
        if h.get("X-BAPI-API-KEY") != KEY:
            return envelope(code=10003, msg="API key is invalid.")
        ts = int(h["X-BAPI-TIMESTAMP"])
        recv = int(h["X-BAPI-RECV-WINDOW"])
        self.signed.append((request.url.path, ts, request.content))
        payload = (
            request.content.decode() if request.method == "POST" else request.url.query.decode()
        )
        expect = rest_signature(
            SECRET, timestamp_ms=ts, api_key=KEY, recv_window_ms=recv, payload=payload
        )
        self.signatures.append(h["X-BAPI-SIGN"])
        if h["X-BAPI-SIGN"] != expect:
            # Bybit echoes the string it signed, API key included
            origin = f"{ts}{KEY}{recv}{payload}"
            return envelope(code=10004, msg=f"error sign! origin_string[{origin}]")
        now = self.server_ms()
        if not now - recv <= ts < now + 1000:
            return envelope(code=10002, msg="invalid request, please check your server timestamp")
        return None

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        q = dict(request.url.params)
        if path == "/v5/order/create":
            return self.create(request)
        if path in ("/v5/order/realtime", "/v5/order/history"):
            link = q.get("orderLinkId")
            rows = [
                o
                for lid, o in self.orders.items()
                if (link is None or lid == link)
                and ((lid in self.history_only) == (path == "/v5/order/history"))
            ]
            return envelope({"list": rows, "nextPageCursor": "", "category": "linear"})
        if path == "/v5/order/cancel":
            body = json.loads(request.content)
            order = self.orders.get(body.get("orderLinkId", ""))
            if order is None:
                return envelope(code=110001, msg="order not exists or too late to cancel")
            if order["orderStatus"] != "New":
                return envelope(code=110008, msg="order has been completed or cancelled")
            order["orderStatus"] = "Cancelled"
            return envelope({"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})
        if path == "/v5/position/set-leverage":
            return envelope(code=110043, msg="leverage not modified")
        raise AssertionError(f"unexpected path {path}")

    def create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        link = body["orderLinkId"]
        if link in self.orders and self.dedup:
            return envelope(code=110072, msg="OrderLinkedID is duplicate")
        self.create_times.append(trio.current_time())
        self.next_id += 1
        self.orders[link] = {
            "orderId": str(self.next_id),
            "orderLinkId": link,
            "symbol": body["symbol"],
            "side": body["side"],
            "orderType": body["orderType"],
            "orderStatus": "New",
            "qty": body["qty"],
            "price": body.get("price", "0"),
            "avgPrice": "",
            "cumExecQty": "0",
            "leavesQty": body["qty"],
            "rejectReason": "EC_NoError",
            "updatedTime": str(self.server_ms()),
        }
        return envelope({"orderId": str(self.next_id), "orderLinkId": link})


# -------------------------------------------------------------- faults


def ret_code(code: int, *, reset_in_ms: int | None = None) -> Fault:
    def fault(_req: httpx.Request, fake: FakeBybit) -> httpx.Response:
        headers = {}
        if reset_in_ms is not None:
            headers = {
                "X-Bapi-Limit": "10",
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit-Reset-Timestamp": str(fake.server_ms() + reset_in_ms),
            }
        return envelope(code=code, msg="scripted", **headers)

    return fault


def status(code: int) -> Fault:
    return lambda _req, _fake: httpx.Response(code, content=b"<html>bad gateway</html>")


def execute_then(then: Fault | str) -> Fault:
    """Execute the request for real, then lose or spoil the reply."""

    def fault(req: httpx.Request, fake: FakeBybit) -> httpx.Response:
        fake.route(req)
        if then == "timeout":
            raise httpx.ReadTimeout("read timed out", request=req)
        if then == "reset":
            raise httpx.RemoteProtocolError("peer closed connection", request=req)
        if then == "garbage":
            return httpx.Response(200, content=b"<html>oops")
        assert callable(then)
        return then(req, fake)

    return fault


def timeout_unexecuted(req: httpx.Request, _fake: FakeBybit) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=req)


def connect_error(req: httpx.Request, _fake: FakeBybit) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=req)


# -------------------------------------------------------------- fixtures


@pytest.fixture
def fake() -> FakeBybit:
    return FakeBybit()


@pytest.fixture
async def rest(fake: FakeBybit) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(fake), base_url="http://bybit.test"
    ) as client:
        yield BybitRest(
            client,
            Credentials(KEY, SECRET),
            clock=trio_ms,
            rng=random.Random(7),
            retry=RetryPolicy(max_attempts=5, base_delay_s=0.2, max_delay_s=2.0, total_budget_s=30),
        )


def intent(link: str = "scalp-0001", **kw: Any) -> OrderIntent:
    args: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": Decimal("0.001"),
        "price": Decimal("50000"),
        "time_in_force": TimeInForce.POST_ONLY,
        "order_link_id": link,
    }
    args.update(kw)
    return OrderIntent(**args)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{message} {extra} {exception}")
    yield lines
    logger.remove(sink)


# -------------------------------------------------------------- signing and wire


async def test_post_body_is_compact_and_signed_bytes_are_sent(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    order_id = await rest.place_order(intent())
    assert order_id == "1001"
    assert fake.orders["scalp-0001"]["price"] == "50000"
    assert len(fake.signatures) == 1  # the fake verified it over the exact body


def test_order_body_matches_reference_vector_body() -> None:
    body = BybitRest._json(BybitRest._order_body(intent()))
    assert body.startswith(
        '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit",'
        '"qty":"0.001","price":"50000","timeInForce":"PostOnly"'
    )
    assert " " not in body
    market = BybitRest._order_body(
        intent(order_type=OrderType.MARKET, price=None, qty=Decimal("1E+1"))
    )
    assert market["qty"] == "10" and "price" not in market and market["timeInForce"] == "IOC"


async def test_get_query_is_signed_as_sent_including_encoded_cursor(autojump_clock: Any) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.query.decode())
        h = request.headers
        expect = rest_signature(
            SECRET,
            timestamp_ms=int(h["X-BAPI-TIMESTAMP"]),
            api_key=KEY,
            recv_window_ms=5000,
            payload=request.url.query.decode(),
        )
        assert h["X-BAPI-SIGN"] == expect
        cursor = "" if "cursor=" in seen[-1] else "page_args%3Dabc%26symbol%3D6%26"
        row = _fixture_row("rest_order_realtime")
        return envelope({"list": [row], "nextPageCursor": cursor})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x") as c:
        rest = BybitRest(c, Credentials(KEY, SECRET), clock=trio_ms)
        orders = await rest.open_orders("ETHUSDT")
    assert len(orders) == 2
    # plain orders only: a position's Full-mode stop orders are not ours to reconcile
    assert seen[0] == "category=linear&symbol=ETHUSDT&openOnly=0&orderFilter=Order&limit=50"
    assert seen[1].endswith("&cursor=page_args%3Dabc%26symbol%3D6%26")


def _fixture_row(name: str) -> dict[str, Any]:
    path = Path(__file__).resolve().parent.parent / "fixtures" / "bybit" / f"{name}.json"
    row: dict[str, Any] = json.loads(path.read_text())["response"]["result"]["list"][0]
    return row


async def test_credentials_repr_hides_secret_and_key() -> None:
    creds = Credentials(KEY, SECRET)
    assert SECRET not in repr(creds) and KEY not in repr(creds)
    async with httpx.AsyncClient(base_url="http://x") as c:
        assert SECRET not in repr(BybitRest(c, creds)) and KEY not in repr(BybitRest(c, creds))


# -------------------------------------------------------------- clock


async def test_timestamp_error_resyncs_clock_and_succeeds(autojump_clock: Any) -> None:
    fake = FakeBybit(skew_ms=12_000)  # exchange clock 12 s ahead of ours
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://x") as c:
        rest = BybitRest(c, Credentials(KEY, SECRET), clock=trio_ms)
        assert await rest.order("BTCUSDT", "nope") is None
    assert 11_900 <= rest.clock_offset_ms <= 12_100
    gets = [p for _, p in fake.calls]
    assert gets[:3] == ["/v5/order/realtime", "/v5/market/time", "/v5/order/realtime"]


async def test_sync_clock_measures_offset(autojump_clock: Any) -> None:
    fake = FakeBybit(skew_ms=-3_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://x") as c:
        rest = BybitRest(c, Credentials(KEY, SECRET), clock=trio_ms)
        assert -3_100 <= await rest.sync_clock() <= -2_900
        assert abs(rest.now_ms() - fake.server_ms()) < 100


# -------------------------------------------------------------- retries


async def test_5xx_burst_is_retried_with_exponential_backoff(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/realtime", status(502), status(503), status(504))
    start = trio.current_time()
    assert await rest.order("BTCUSDT", "x") is None
    elapsed = trio.current_time() - start
    # delays 0.2, 0.4, 0.8 s, each jittered into [50 %, 100 %]
    assert 0.7 <= elapsed <= 1.4 + 1e-6
    assert [p for _, p in fake.calls].count("/v5/order/realtime") == 4


async def test_retries_are_bounded_in_attempts(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/realtime", *[status(503)] * 20)
    with pytest.raises(HTTPStatusError) as info:
        await rest.order("BTCUSDT", "x")
    assert info.value.status == 503 and info.value.retryable
    assert [p for _, p in fake.calls].count("/v5/order/realtime") == 5


async def test_retries_are_bounded_in_total_time(fake: FakeBybit, autojump_clock: Any) -> None:
    fake.script("/v5/order/realtime", *[status(503)] * 50)
    policy = RetryPolicy(max_attempts=50, base_delay_s=1.0, max_delay_s=4.0, total_budget_s=10.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://x") as c:
        rest = BybitRest(c, Credentials(KEY, SECRET), clock=trio_ms, retry=policy)
        start = trio.current_time()
        with pytest.raises(HTTPStatusError):
            await rest.order("BTCUSDT", "x")
    assert trio.current_time() - start <= 10.0


async def test_final_errors_are_not_retried(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", ret_code(110007))
    with pytest.raises(InsufficientBalance) as info:
        await rest.place_order(intent())
    assert info.value.ret_code == 110007 and not info.value.retryable
    assert fake.calls == [("POST", "/v5/order/create")]
    fake.script("/v5/order/realtime", status(401))
    with pytest.raises(HTTPStatusError):
        await rest.order("BTCUSDT", "x")


async def test_bad_key_is_an_auth_error(fake: FakeBybit, autojump_clock: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://x") as c:
        rest = BybitRest(c, Credentials("wrong", SECRET), clock=trio_ms)
        with pytest.raises(AuthError):
            await rest.order("BTCUSDT", "x")
    assert len(fake.calls) == 1


async def test_10006_waits_until_reset_then_places_once(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", *[ret_code(10006, reset_in_ms=1500)] * 3)
    start = trio.current_time()
    order_id = await rest.place_order(intent())
    assert len(fake.orders) == 1 and fake.orders["scalp-0001"]["orderId"] == order_id
    # three waits of ~1.5 s, each until the announced reset
    assert trio.current_time() - start >= 4.5
    assert fake.create_times[0] - start >= 4.5
    assert [p for _, p in fake.calls].count("/v5/order/create") == 4
    # every attempt signed afresh (new timestamp), the body bytes identical
    creates = [(ts, body) for path, ts, body in fake.signed if path == "/v5/order/create"]
    stamps = [ts for ts, _ in creates]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert len({body for _, body in creates}) == 1


async def test_10006_without_progress_gives_up(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", *[ret_code(10006, reset_in_ms=100)] * 10)
    with pytest.raises(RateLimited):
        await rest.place_order(intent())
    assert fake.orders == {}


async def test_client_side_limiter_keeps_creates_under_10_per_second(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    for i in range(35):
        await rest.place_order(intent(f"burst-{i}"))
    times = fake.create_times
    assert len(times) == 35
    for i in range(len(times) - 10):
        assert times[i + 10] - times[i] >= 1.0  # any 11 creates span at least 1 s


async def test_exhausted_limit_header_slows_down_before_10006(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    def nearly_exhausted(req: httpx.Request, f: FakeBybit) -> httpx.Response:
        resp = f.route(req)
        resp.headers.update(
            {
                "X-Bapi-Limit": "50",
                "X-Bapi-Limit-Status": "1",
                "X-Bapi-Limit-Reset-Timestamp": str(f.server_ms() + 800),
            }
        )
        return resp

    fake.script("/v5/order/realtime", nearly_exhausted)
    await rest.order("BTCUSDT", "a")
    t0 = trio.current_time()
    await rest.order("BTCUSDT", "b")
    assert trio.current_time() - t0 >= 0.79


# -------------------------------------------------------------- idempotent create

#: Every way a create can go wrong before it ends up placed. Each must leave exactly
#: one order on the exchange and return its id.
CREATE_FAULTS: dict[str, list[Fault]] = {
    "clean": [],
    "timeout-after-executing": [execute_then("timeout")],
    "reset-after-executing": [execute_then("reset")],
    "garbage-after-executing": [execute_then("garbage")],
    "503-after-executing": [execute_then(status(503))],
    "10000-after-executing": [execute_then(ret_code(10000))],
    "10016-after-executing": [execute_then(ret_code(10016))],
    "timeout-not-executed": [timeout_unexecuted],
    "503-not-executed": [status(503), status(502)],
    "10016-not-executed": [ret_code(10016)],
    "connect-error": [connect_error, connect_error],
    "rate-limited": [ret_code(10006, reset_in_ms=300)],
    "timestamp": [ret_code(10002)],
    "everything": [
        connect_error,
        ret_code(10006, reset_in_ms=200),
        timeout_unexecuted,
        status(503),
        execute_then("timeout"),
    ],
}


@pytest.mark.parametrize("faults", CREATE_FAULTS.values(), ids=CREATE_FAULTS.keys())
async def test_create_is_idempotent_under_every_fault(
    faults: list[Fault], rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    rest.retry = RetryPolicy(max_attempts=8, base_delay_s=0.1, total_budget_s=60)
    # Worst case: this exchange does NOT refuse a reused orderLinkId, so any second
    # create that reached it would be a second order. The client alone must prevent it.
    fake.dedup = False
    fake.script("/v5/order/create", *faults)
    order_id = await rest.place_order(intent())
    assert list(fake.orders) == ["scalp-0001"]
    assert fake.orders["scalp-0001"]["orderId"] == order_id
    assert len(fake.create_times) == 1  # the exchange executed exactly one create
    assert rest.create_sends == [p for _, p in fake.calls].count("/v5/order/create")


async def test_outcome_unknown_but_order_exists_is_not_resent(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", execute_then("timeout"))
    order_id = await rest.place_order(intent())
    paths = [p for _, p in fake.calls]
    assert paths == ["/v5/order/create", "/v5/order/realtime"]
    assert order_id == fake.orders["scalp-0001"]["orderId"]


async def test_order_found_in_history_after_unknown_outcome(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    def execute_fill_and_time_out(req: httpx.Request, f: FakeBybit) -> httpx.Response:
        f.route(req)
        f.orders["scalp-0001"].update(orderStatus="Filled", cumExecQty="0.001", avgPrice="50000")
        f.history_only.add("scalp-0001")
        raise httpx.ReadTimeout("timed out", request=req)

    fake.script("/v5/order/create", execute_fill_and_time_out)
    order_id = await rest.place_order(intent())
    assert [p for _, p in fake.calls] == [
        "/v5/order/create",
        "/v5/order/realtime",
        "/v5/order/history",
    ]
    assert order_id == fake.orders["scalp-0001"]["orderId"]
    update = await rest.order("BTCUSDT", "scalp-0001")
    assert update is not None and update.status is OrderStatus.FILLED


async def test_duplicate_reply_resolves_to_the_existing_order(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    first = await rest.place_order(intent())
    again = await rest.place_order(intent())  # e.g. the app retried the command
    assert again == first and len(fake.orders) == 1 and len(fake.create_times) == 1


async def test_duplicate_without_a_visible_order_is_never_resent(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", ret_code(110072))
    with pytest.raises(AmbiguousOutcome) as info:  # the id is taken: it may exist
        await rest.place_order(intent())
    assert isinstance(info.value.__cause__, DuplicateOrder)
    assert [p for _, p in fake.calls].count("/v5/order/create") == 1
    assert fake.orders == {}


def empty_read(_req: httpx.Request, _fake: FakeBybit) -> httpx.Response:
    """A read-back that does not see the order yet (Bybit's history lags)."""
    return envelope({"list": [], "nextPageCursor": "", "category": "linear"})


async def test_resend_duplicate_without_visible_order_is_ambiguous(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    # The first create executes but its reply is lost; the read-backs lag and see
    # nothing, so the same body is resent and Bybit answers 110072. The order exists:
    # this must never look like a final rejection.
    fake.script("/v5/order/create", execute_then("timeout"))
    fake.script("/v5/order/realtime", *[empty_read] * 4)
    fake.script("/v5/order/history", *[empty_read] * 4)
    with pytest.raises(AmbiguousOutcome) as info:
        await rest.place_order(intent())
    assert isinstance(info.value.__cause__, DuplicateOrder)
    assert [p for _, p in fake.calls].count("/v5/order/create") == 2
    assert len(fake.orders) == 1 and len(fake.create_times) == 1


async def test_unresolvable_outcome_raises_ambiguous_and_never_resends(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", execute_then("timeout"))
    fake.script("/v5/order/realtime", *[status(503)] * 20)
    with pytest.raises(AmbiguousOutcome, match="read-back failed"):
        await rest.place_order(intent())
    assert [p for _, p in fake.calls].count("/v5/order/create") == 1
    assert len(fake.orders) == 1


async def test_attempts_exhausted_without_order_is_ambiguous(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/create", *[status(503)] * 20)
    with pytest.raises(AmbiguousOutcome, match="not placed"):
        await rest.place_order(intent())
    assert fake.orders == {}
    assert [p for _, p in fake.calls].count("/v5/order/create") == rest.retry.max_attempts


def slow(seconds: float, then: Fault | str) -> Fault:
    """Answer (or time out) only after ``seconds`` of trio time: a slow network."""

    async def fault(req: httpx.Request, fake: FakeBybit) -> httpx.Response:
        await trio.sleep(seconds)
        if then == "timeout":
            raise httpx.ReadTimeout("read timed out", request=req)
        assert callable(then)
        return then(req, fake)

    return fault  # type: ignore[return-value]


async def test_place_order_stays_within_its_total_budget(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    # Every create times out after 4 s (unexecuted), every read-back takes 4 s and sees
    # nothing. Before the fix each read-back started a fresh budget: ~38 s for 30.
    request_timeout = 4.0
    fake.script("/v5/order/create", *[slow(request_timeout, "timeout")] * 20)
    fake.script("/v5/order/realtime", *[slow(request_timeout, empty_read)] * 40)
    fake.script("/v5/order/history", *[slow(request_timeout, empty_read)] * 40)
    start = trio.current_time()
    with pytest.raises(AmbiguousOutcome):
        await rest.place_order(intent())
    elapsed = trio.current_time() - start
    assert elapsed <= rest.retry.total_budget_s + request_timeout
    assert rest.create_sends >= 2  # it did resend within the budget


async def test_pacing_waits_count_against_the_budget(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    # The last create's headers say the limit is used up for 8 s; the budget is 5 s.
    def exhausted(req: httpx.Request, f: FakeBybit) -> httpx.Response:
        resp = f.route(req)
        resp.headers.update(
            {
                "X-Bapi-Limit": "10",
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit-Reset-Timestamp": str(f.server_ms() + 8000),
            }
        )
        return resp

    fake.script("/v5/order/create", exhausted)
    await rest.place_order(intent("first"))
    rest.retry = RetryPolicy(total_budget_s=5.0, max_rate_limit_wait_s=10.0)
    start = trio.current_time()
    with pytest.raises(BybitError) as info:
        await rest.place_order(intent("second"))
    assert not isinstance(info.value, AmbiguousOutcome)  # nothing was sent
    assert trio.current_time() - start <= 5.0
    assert list(fake.orders) == ["first"]


async def test_failed_clock_resync_after_a_possible_send_is_ambiguous(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    # The first create executed (reply lost), the read-back lags, the resend gets 10002
    # and the clock re-sync fails: the order may exist, so this is not a plain failure.
    fake.script("/v5/order/create", execute_then("timeout"), ret_code(10002))
    fake.script("/v5/order/realtime", empty_read)
    fake.script("/v5/order/history", empty_read)
    fake.script("/v5/market/time", *[status(503)] * 10)
    with pytest.raises(AmbiguousOutcome):
        await rest.place_order(intent())
    assert len(fake.create_times) == 1


@pytest.mark.parametrize("refusal", [ret_code(110007), status(403)], ids=["110007", "403"])
async def test_refused_resend_after_a_possible_send_is_ambiguous(
    refusal: Fault, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    # The first create executed (reply lost) and used the margin; the read-back lags,
    # and the resend is refused. The refusal says nothing about the first copy.
    fake.script("/v5/order/create", execute_then("timeout"), refusal)
    fake.script("/v5/order/realtime", empty_read)
    fake.script("/v5/order/history", empty_read)
    with pytest.raises(AmbiguousOutcome):
        await rest.place_order(intent())
    assert len(fake.create_times) == 1


# -------------------------------------------------------------- other calls


async def test_cancel_mapping_and_leverage(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    await rest.place_order(intent())
    await rest.cancel_order("BTCUSDT", "scalp-0001")
    assert fake.orders["scalp-0001"]["orderStatus"] == "Cancelled"
    with pytest.raises(OrderAlreadyFinal):
        await rest.cancel_order("BTCUSDT", "scalp-0001")
    with pytest.raises(OrderNotFound):
        await rest.cancel_order("BTCUSDT", "never-placed")
    await rest.set_leverage("BTCUSDT", Decimal("5"))  # 110043 is success
    with pytest.raises(ValueError, match="order_link_id or order_id"):
        await rest.cancel_order("BTCUSDT")


async def test_cancel_after_timeout_is_retried(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    await rest.place_order(intent())
    fake.script("/v5/order/cancel", execute_then("timeout"))
    with pytest.raises(OrderAlreadyFinal):  # the retry finds it cancelled already
        await rest.cancel_order("BTCUSDT", "scalp-0001")
    assert fake.orders["scalp-0001"]["orderStatus"] == "Cancelled"


async def test_server_busy_is_retryable_for_reads(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    fake.script("/v5/order/realtime", ret_code(10016), ret_code(10000))
    assert await rest.order("BTCUSDT", "x") is None
    assert ServerBusy.retryable


# -------------------------------------------------------------- secrets


async def test_no_secret_in_logs_or_errors(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any, log_lines: list[str]
) -> None:
    texts: list[str] = []
    for name, faults in CREATE_FAULTS.items():
        fake.script("/v5/order/create", *faults)
        await rest.place_order(intent(f"s-{name}"))
    failing: list[list[Fault]] = [
        [ret_code(110007)],
        [execute_then("timeout")] + [status(503)] * 0,
        [ret_code(110072)],
        [status(403)],
    ]
    for i, faults in enumerate(failing):
        fake.script("/v5/order/create", *faults)
        if i == 1:
            fake.script("/v5/order/realtime", *[status(503)] * 10)
        try:
            await rest.place_order(intent(f"fail-{i}"))
        except BybitError as exc:
            texts.append(f"{exc!s} {exc!r} {exc.__cause__!r}")
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="http://x") as c:
        bad = BybitRest(c, Credentials("wrong", SECRET), clock=trio_ms)
        with pytest.raises(AuthError) as info:
            await bad.order("BTCUSDT", "x")
        texts.append(f"{info.value!s} {info.value!r}")
        # 10004: Bybit's retMsg echoes origin_string[<ts><API KEY><recv><payload>]
        bad_secret = BybitRest(c, Credentials(KEY, "wrong-secret"), clock=trio_ms)
        with pytest.raises(AuthError) as info:
            await bad_secret.order("BTCUSDT", "x")
        texts.append(f"{info.value!s} {info.value!r} {info.value.ret_msg}")
        # an HTTP error whose body carries the same echo
        fake.script("/v5/order/realtime", echo_key_status(401))
        with pytest.raises(HTTPStatusError) as http_info:
            await rest.order("BTCUSDT", "x")
        texts.append(f"{http_info.value!s} {http_info.value!r}")
    assert len(texts) == 7
    everything = "\n".join(log_lines + texts)
    assert "order create" in everything  # the capture did see the log lines
    assert "error sign!" in everything and "10004" in everything
    assert len(fake.signatures) > 20
    for secret in [SECRET, KEY, "wrong-secret", *fake.signatures]:
        assert secret not in everything


def echo_key_status(code: int) -> Fault:
    def fault(_req: httpx.Request, _fake: FakeBybit) -> httpx.Response:
        body = {"retCode": 10004, "retMsg": f"error sign! origin_string[1{KEY}5000{SECRET}]"}
        return httpx.Response(code, content=json.dumps(body).encode())

    return fault


def test_backoff_delay_doubles_caps_and_jitters() -> None:
    rng = random.Random(1)
    for attempt, nominal in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        delays = [backoff_delay(attempt, 0.2, 1.0, rng) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal / 4  # jittered, not constant


# -------------------------------------------------------------- issue 9: stops, closed PnL


def _recorder(
    seen: list[dict[str, Any]], reply: Callable[[], httpx.Response] | None = None
) -> Fault:
    """A handler that keeps the JSON body it received (after the fake checked its
    signature over those exact bytes) and answers ``reply()`` (default: OK, ``{}``)."""

    def handler(req: httpx.Request, _fake: FakeBybit) -> httpx.Response:
        seen.append(json.loads(req.content))
        return reply() if reply is not None else envelope({})

    return handler


async def test_set_trading_stop_body_is_full_mode_market_and_signed(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    from scalper.core.model import TriggerBy

    seen: list[dict[str, Any]] = []
    fake.script("/v5/position/trading-stop", _recorder(seen), _recorder(seen), _recorder(seen))
    await rest.set_trading_stop("BTCUSDT", stop_loss=Decimal("49500.5"))
    await rest.set_trading_stop(
        "BTCUSDT",
        stop_loss=Decimal("49000"),
        take_profit=Decimal("52000"),
        trigger_by=TriggerBy.LAST_PRICE,
        position_idx=1,
    )
    await rest.set_trading_stop("BTCUSDT", stop_loss=None)
    assert seen[0] == {
        "category": "linear",
        "symbol": "BTCUSDT",
        "positionIdx": 0,
        "tpslMode": "Full",
        "stopLoss": "49500.5",
        "slTriggerBy": "MarkPrice",
        "slOrderType": "Market",
    }
    assert (seen[1]["takeProfit"], seen[1]["tpTriggerBy"], seen[1]["slTriggerBy"]) == (
        "52000",
        "LastPrice",
        "LastPrice",
    )
    assert seen[1]["positionIdx"] == 1 and seen[1]["tpOrderType"] == "Market"
    assert seen[2]["stopLoss"] == "0" and "takeProfit" not in seen[2]  # "0" removes it
    assert len(fake.signatures) == 3  # each verified by the fake over the exact body
    # the signed bytes are compact JSON in the built order
    body = fake.signed[0][2].decode()
    assert body.startswith('{"category":"linear","symbol":"BTCUSDT","positionIdx":0,')


async def test_set_trading_stop_not_modified_is_success_and_refusals_are_typed(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    from scalper.bybit.errors import InvalidRequest, NotModified

    fake.script(
        "/v5/position/trading-stop",
        ret_code(34040),
        lambda _r, _f: envelope(code=10001, msg="can not set tp/sl/ts for zero position"),
        lambda _r, _f: envelope(
            code=10001,
            msg="StopLoss:5100000000000 set for Buy position should lower than "
            "base_price:5000000000000??MarkPrice",
        ),
    )
    warnings: list[str] = []
    handler = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        await rest.set_trading_stop("BTCUSDT", stop_loss=Decimal("49000"))  # 34040: fine
    finally:
        logger.remove(handler)
    assert warnings == []  # success, not a failure worth a warning (an attached stop)
    with pytest.raises(InvalidRequest, match="zero position") as zero:
        await rest.set_trading_stop("BTCUSDT", stop_loss=Decimal("49000"))
    assert zero.value.ret_code == 10001 and not isinstance(zero.value, NotModified)
    with pytest.raises(InvalidRequest, match="should lower than base_price"):
        await rest.set_trading_stop("BTCUSDT", stop_loss=Decimal("51000"))
    assert [p for _, p in fake.calls].count("/v5/position/trading-stop") == 3  # none retried


async def test_set_trading_stop_is_retried_after_a_lost_reply(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    def lost(req: httpx.Request, _f: FakeBybit) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=req)

    fake.script("/v5/position/trading-stop", lost, ret_code(34040))  # it had landed
    await rest.set_trading_stop("BTCUSDT", stop_loss=Decimal("49000"))
    assert [p for _, p in fake.calls].count("/v5/position/trading-stop") == 2


@pytest.mark.parametrize(
    "kw",
    [{"stop_loss": Decimal(0)}, {"stop_loss": 49000.0}, {"take_profit": Decimal(-1)}],
)
async def test_set_trading_stop_refuses_bad_prices_locally(
    rest: BybitRest, fake: FakeBybit, kw: dict[str, Any], autojump_clock: Any
) -> None:
    args: dict[str, Any] = {"stop_loss": Decimal(49000), **kw}
    with pytest.raises(ValueError, match="positive Decimal"):
        await rest.set_trading_stop("BTCUSDT", **args)
    assert fake.calls == []


def _closed_row(order_id: str, pnl: str, updated: int) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "orderType": "Market",
        "leverage": "10",
        "updatedTime": str(updated),
        "side": "Sell",
        "orderId": order_id,
        "closedPnl": pnl,
        "avgEntryPrice": "50000",
        "qty": "0.01",
        "cumEntryValue": "500",
        "createdTime": str(updated - 5),
        "orderPrice": "49000",
        "closedSize": "0.01",
        "avgExitPrice": "49900",
        "execType": "Trade",
        "fillCount": "1",
        "cumExitValue": "499",
    }


async def test_closed_pnl_pages_through_the_cursor_and_skips_bad_rows(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    queries: list[dict[str, str]] = []
    raw: list[str] = []

    def page(rows: list[dict[str, Any]], cursor: str) -> Fault:
        def handler(req: httpx.Request, _f: FakeBybit) -> httpx.Response:
            queries.append(dict(req.url.params))
            raw.append(req.url.query.decode())
            return envelope({"list": rows, "nextPageCursor": cursor, "category": "linear"})

        return handler

    bad = dict(_closed_row("c", "-1", 3), closedPnl="oops")
    fake.script(
        "/v5/position/closed-pnl",
        page([_closed_row("a", "-1.5", 9), _closed_row("b", "2.25", 8)], "p%3D2"),
        page([bad, _closed_row("d", "-0.1", 2)], ""),
    )
    rows = await rest.closed_pnl(start_ms=1_000, end_ms=2_000, symbol="BTCUSDT")
    assert [(r.order_id, r.closed_pnl) for r in rows] == [
        ("a", Decimal("-1.5")),
        ("b", Decimal("2.25")),
        ("d", Decimal("-0.1")),
    ]
    assert rows[0].side is Side.SELL and rows[0].updated_ms == 9
    assert rest.parse_stats.errors == 1
    assert queries[0] == {
        "category": "linear",
        "symbol": "BTCUSDT",
        "startTime": "1000",
        "endTime": "2000",
        "limit": "100",
    }
    assert raw[1].endswith("&cursor=p%3D2")  # Bybit's cursor sent back verbatim


def test_order_body_carries_the_stop_fields() -> None:
    from scalper.core.model import TriggerBy

    body = BybitRest._order_body(intent(stop_loss=Decimal("49000.0")))
    assert {k: body[k] for k in ("stopLoss", "slTriggerBy", "tpslMode", "slOrderType")} == {
        "stopLoss": "49000.0",
        "slTriggerBy": "MarkPrice",
        "tpslMode": "Full",
        "slOrderType": "Market",
    }
    last = BybitRest._order_body(intent(stop_loss=Decimal(1), sl_trigger_by=TriggerBy.LAST_PRICE))
    assert last["slTriggerBy"] == "LastPrice"
    plain = BybitRest._order_body(intent())
    assert not {"stopLoss", "slTriggerBy", "tpslMode", "slOrderType"} & set(plain)


async def test_place_order_with_a_stop_is_signed_over_the_body_sent(
    rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    await rest.place_order(intent(stop_loss=Decimal("49000")))
    sent = json.loads(fake.signed[-1][2])
    assert (sent["stopLoss"], sent["tpslMode"]) == ("49000", "Full")
    assert len(fake.signatures) == 1 and "scalp-0001" in fake.orders


@pytest.mark.parametrize(
    "kw",
    [
        {"stop_loss": 49000.0},
        {"stop_loss": Decimal(0)},
        {"stop_loss": Decimal("-1")},
        {"stop_loss": Decimal("NaN")},
        {"stop_loss": Decimal("49000"), "reduce_only": True},
        {"stop_loss": Decimal("49000"), "sl_trigger_by": "MarkPrice"},
    ],
)
def test_intent_stop_validators(kw: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        intent(**kw)


# -------------------------------------------------------------- every httpx exception


def _raising(make: Callable[[httpx.Request], Exception], *, execute: bool = False) -> Fault:
    def handler(req: httpx.Request, fake: FakeBybit) -> httpx.Response:
        if execute:
            fake.route(req)
        raise make(req)

    return handler


#: httpx exceptions raised after the request may have been written, and the error a GET
#: maps to
MAYBE_SENT: dict[str, tuple[Callable[[httpx.Request], Exception], type[BybitError]]] = {
    "ReadTimeout": (lambda r: httpx.ReadTimeout("t", request=r), RequestTimeout),
    "WriteTimeout": (lambda r: httpx.WriteTimeout("t", request=r), RequestTimeout),
    "ReadError": (lambda r: httpx.ReadError("e", request=r), NetworkError),
    "WriteError": (lambda r: httpx.WriteError("e", request=r), NetworkError),
    "CloseError": (lambda r: httpx.CloseError("e", request=r), NetworkError),
    "RemoteProtocolError": (lambda r: httpx.RemoteProtocolError("e", request=r), NetworkError),
    "LocalProtocolError": (lambda r: httpx.LocalProtocolError("e", request=r), NetworkError),
    "ProxyError": (lambda r: httpx.ProxyError("e", request=r), NetworkError),
    "DecodingError": (lambda r: httpx.DecodingError("bad gzip", request=r), ProtocolError),
    "TooManyRedirects": (lambda r: httpx.TooManyRedirects("loop", request=r), ProtocolError),
    "RequestError": (lambda r: httpx.RequestError("other", request=r), NetworkError),
    "StreamClosed": (lambda r: httpx.StreamClosed(), NetworkError),
    "StreamConsumed": (lambda r: httpx.StreamConsumed(), NetworkError),
}
#: raised before a byte was written
NEVER_SENT: dict[str, tuple[Callable[[httpx.Request], Exception], type[BybitError]]] = {
    "ConnectError": (lambda r: httpx.ConnectError("refused", request=r), NetworkError),
    "ConnectTimeout": (lambda r: httpx.ConnectTimeout("t", request=r), RequestTimeout),
    "PoolTimeout": (lambda r: httpx.PoolTimeout("t", request=r), RequestTimeout),
    "UnsupportedProtocol": (lambda r: httpx.UnsupportedProtocol("x", request=r), NetworkError),
    "InvalidURL": (lambda r: httpx.InvalidURL("bad url"), NetworkError),
}
ALL_HTTPX = {**MAYBE_SENT, **NEVER_SENT}


@pytest.mark.parametrize("name", ALL_HTTPX, ids=list(ALL_HTTPX))
async def test_every_httpx_exception_on_a_read_is_a_typed_error(
    name: str, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    make, expected = ALL_HTTPX[name]
    rest.retry = RetryPolicy(max_attempts=1)
    fake.script("/v5/order/realtime", _raising(make))
    with pytest.raises(expected) as caught:
        await rest.order("BTCUSDT", "x")
    assert type(caught.value) is expected  # not a subclass such as AmbiguousOutcome
    assert caught.value.__cause__ is not None  # raised from the httpx error


@pytest.mark.parametrize("name", ALL_HTTPX, ids=list(ALL_HTTPX))
async def test_every_httpx_exception_on_a_read_is_retried(
    name: str, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    make, _ = ALL_HTTPX[name]
    fake.script("/v5/order/realtime", _raising(make), _raising(make))
    assert await rest.order("BTCUSDT", "x") is None  # the third attempt answered
    assert [p for _, p in fake.calls] == ["/v5/order/realtime"] * 3 + ["/v5/order/history"]


@pytest.mark.parametrize("name", MAYBE_SENT, ids=list(MAYBE_SENT))
async def test_a_create_that_may_have_been_sent_is_read_back_never_duplicated(
    name: str, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    make, _ = MAYBE_SENT[name]
    fake.dedup = False  # worst case: a second create would be a second order
    fake.script("/v5/order/create", _raising(make, execute=True))
    order_id = await rest.place_order(intent())
    assert order_id == fake.orders["scalp-0001"]["orderId"]
    assert len(fake.create_times) == 1
    assert [p for _, p in fake.calls] == ["/v5/order/create", "/v5/order/realtime"]


@pytest.mark.parametrize("name", MAYBE_SENT, ids=list(MAYBE_SENT))
async def test_a_create_that_may_have_been_sent_and_cannot_be_read_is_ambiguous(
    name: str, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    make, _ = MAYBE_SENT[name]
    rest.retry = RetryPolicy(max_attempts=3, total_budget_s=5)
    fake.script("/v5/order/create", _raising(make, execute=True))
    fake.script("/v5/order/realtime", *[_raising(make)] * 20)
    with pytest.raises(AmbiguousOutcome):
        await rest.place_order(intent())
    assert len(fake.create_times) == 1


@pytest.mark.parametrize("name", NEVER_SENT, ids=list(NEVER_SENT))
async def test_a_create_never_sent_is_simply_retried(
    name: str, rest: BybitRest, fake: FakeBybit, autojump_clock: Any
) -> None:
    make, _ = NEVER_SENT[name]
    fake.script("/v5/order/create", _raising(make))
    order_id = await rest.place_order(intent())
    assert order_id == fake.orders["scalp-0001"]["orderId"]
    assert [p for _, p in fake.calls] == ["/v5/order/create", "/v5/order/create"]
