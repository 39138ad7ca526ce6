"""Bybit v5 REST on top of the venue: routing, auth, rate limits, the envelope.

``RestApi.handle`` is synchronous (the venue never waits), takes the raw request
(method, path, raw query bytes, lower-cased headers, raw body bytes) and returns a
``Reply``. The signature is checked over the exact bytes the client sent: the raw query
string of a GET, the raw body of a POST, as Bybit signs them.

Checks, in Bybit's order: api key (10003), timestamp within recv_window (10002),
signature (10004), per-key rate limit of the endpoint (10006, "Too many visits!",
rolling 1 s window, ``X-Bapi-Limit*`` headers), then parameters (10001) and the
venue's own refusals. Business errors are HTTP 200 with ``retCode != 0``; only an
unknown path is a 404. Nothing a client sends can produce a 500.

This module owns what every request goes through; the endpoints themselves are three
groups, one module each: ``rest_market`` (public), ``rest_orders``, ``rest_account``.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable
from functools import partial
from urllib.parse import parse_qsl

import attrs
import orjson
from loguru import logger

from ..bybit.auth import sign
from .accounts import Account
from .errors import VenueError
from .params import Params, Result, check_category
from .rest_account import AccountEndpoints
from .rest_market import MarketEndpoints
from .rest_orders import OrderEndpoints
from .venue import Exchange

__all__ = ["Reply", "RestApi", "envelope", "verify_rest_signature"]


def verify_rest_signature(
    secret: str, *, timestamp: str, api_key: str, recv_window: str, payload: str, signature: str
) -> bool:
    """True when ``signature`` is Bybit's HMAC of ``timestamp+api_key+recv_window+payload``.

    The strings are taken exactly as the client sent them (headers, raw query, raw body).
    """
    expected = sign(secret, f"{timestamp}{api_key}{recv_window}{payload}")
    return hmac.compare_digest(expected, signature.lower())


@attrs.frozen
class Reply:
    """One HTTP reply: status, JSON body bytes, extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def envelope(code: int, msg: str, result: Result, now_ms: int) -> bytes:
    """Bybit's response envelope, serialised."""
    return orjson.dumps(
        {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}
    )


@attrs.frozen
class _Public:
    """A path anyone may call."""

    method: str
    handler: Callable[[Params], Result]
    #: the route checks ``category`` before the call (the listings check their own)
    category: bool = True


@attrs.frozen
class _Private:
    """A path that needs a signed request; ``limit``: calls per key per second."""

    method: str
    handler: Callable[[Account, Params], Result]
    limit: int
    category: bool = True


@attrs.define(eq=False)
class RestApi:
    """The REST endpoints of the simulated venue ``ex``: routing, auth, rate limits."""

    ex: Exchange
    #: the endpoint groups the routes call
    market: MarketEndpoints = attrs.field(init=False)
    orders: OrderEndpoints = attrs.field(init=False)
    account: AccountEndpoints = attrs.field(init=False)
    _routes: dict[str, _Public | _Private] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.market = MarketEndpoints(self.ex)
        self.orders = OrderEndpoints(self.ex)
        self.account = AccountEndpoints(self.ex)
        self._routes = _routes(self.market, self.orders, self.account)

    def handle(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[str, str],
        body: bytes,
        forced_code: tuple[int, str | None, int] | None = None,
    ) -> Reply:
        """Answer one request (``forced_code``: the ret_code fault, (code, msg, reset_ms))."""
        now = self.ex.now_ms()
        route = self._routes.get(path)
        if route is None or route.method != method:
            what = "route not found" if route is None else f"route not found: use {route.method}"
            return Reply(404, envelope(10017, what, {}, now))
        extra: list[tuple[bytes, bytes]] = []
        try:
            payload = query.decode() if method == "GET" else body.decode()
        except UnicodeDecodeError:
            return Reply(200, envelope(10001, "params error: request is not UTF-8", {}, now))
        limit = route.limit if isinstance(route, _Private) else 0
        call: Callable[[Params], Result]
        try:
            if isinstance(route, _Private):
                account = self._authenticate(headers, payload, now)
                extra = self._rate_limit(account, path, limit, now)
                call = partial(route.handler, account)
            else:
                call = route.handler
            if forced_code is not None:
                code, msg, reset_ms = forced_code
                if code == 10006:
                    extra = _limit_headers(limit, 0, now + reset_ms)
                raise VenueError(code, msg or _DEFAULT_MSGS.get(code, "simulated error"))  # noqa: TRY301
            params = self._params(method, payload)
            if route.category:
                check_category(params)
            result = call(params)
        except VenueError as exc:
            if isinstance(exc, _Limited):
                extra = exc.headers
            return Reply(200, envelope(exc.code, exc.msg, {}, now), tuple(extra))
        except Exception:  # noqa: BLE001 -- a simulator bug: log it loudly, answer 10016
            logger.exception("sim: internal error on {} {}", method, path)
            return Reply(200, envelope(10016, "Internal server error.", {}, now), tuple(extra))
        return Reply(200, envelope(0, "OK", result, now), tuple(extra))

    def _params(self, method: str, payload: str) -> Params:
        if method == "GET":
            return dict(parse_qsl(payload, keep_blank_values=True))
        if not payload.strip():
            return {}
        try:
            params = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise VenueError(10001, "params error: request body is not valid JSON") from None
        if not isinstance(params, dict):
            raise VenueError(10001, "params error: request body must be a JSON object")
        return params

    def _authenticate(self, headers: dict[str, str], payload: str, now: int) -> Account:
        key = headers.get("x-bapi-api-key", "")
        account = self.ex.accounts.get(key)
        if account is None:
            raise VenueError(10003, "API key is invalid.")
        ts_text = headers.get("x-bapi-timestamp", "")
        recv_text = headers.get("x-bapi-recv-window", "")
        try:
            ts = int(ts_text)
            recv = int(recv_text) if recv_text else 5000
        except ValueError:
            raise VenueError(
                10002, "invalid request, please check your timestamp and recv_window param"
            ) from None
        if not now - recv <= ts < now + 1000:
            raise VenueError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{recv}]",
            )
        signature = headers.get("x-bapi-sign", "")
        if not verify_rest_signature(
            account.api_secret,
            timestamp=ts_text,
            api_key=key,
            recv_window=recv_text,
            payload=payload,
            signature=signature,
        ):
            raise VenueError(
                10004, "error sign! origin_string[" + f"{ts_text}{key}{recv_text}" + payload + "]"
            )
        return account

    def _rate_limit(
        self, account: Account, path: str, limit: int, now: int
    ) -> list[tuple[bytes, bytes]]:
        window = account.windows.get(path)
        if window is None:
            window = account.windows[path] = deque()
        while window and window[0] <= now - 1000:
            window.popleft()
        if len(window) >= limit:
            raise _Limited(_limit_headers(limit, 0, window[0] + 1000))
        window.append(now)
        return _limit_headers(limit, limit - len(window), now)


class _Limited(VenueError):
    """10006 with the headers that say when the window resets."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(10006, "Too many visits!")
        self.headers = headers


_DEFAULT_MSGS = {
    10000: "Server Timeout",
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10003: "API key is invalid.",
    10004: "error sign!",
    10006: "Too many visits!",
    10016: "Internal server error.",
    110001: "order not exists or too late to cancel",
    110007: "ab not enough for new order",
    110017: "Reduce-only rule not satisfied",
    110072: "OrderLinkedID is duplicate",
    110094: "Order does not meet minimum order value",
    34040: "not modified",
}


def _limit_headers(limit: int, left: int, reset_ms: int) -> list[tuple[bytes, bytes]]:
    """Bybit's rate-limit headers: the limit, calls left, when the window resets (ms)."""
    return [
        (b"x-bapi-limit", str(limit).encode()),
        (b"x-bapi-limit-status", str(left).encode()),
        (b"x-bapi-limit-reset-timestamp", str(reset_ms).encode()),
    ]


def _routes(
    market: MarketEndpoints, orders: OrderEndpoints, account: AccountEndpoints
) -> dict[str, _Public | _Private]:
    """Every path the simulator serves: its method, handler and (private) rate limit."""
    return {
        "/v5/market/time": _Public("GET", market.market_time, category=False),
        "/v5/market/instruments-info": _Public("GET", market.instruments, category=False),
        "/v5/market/tickers": _Public("GET", market.tickers, category=False),
        "/v5/market/orderbook": _Public("GET", market.orderbook),
        "/v5/market/recent-trade": _Public("GET", market.recent_trade),
        "/v5/market/kline": _Public("GET", market.kline),
        "/v5/order/create": _Private("POST", orders.create, 10),
        "/v5/order/amend": _Private("POST", orders.amend, 10),
        "/v5/order/cancel": _Private("POST", orders.cancel, 10),
        "/v5/order/cancel-all": _Private("POST", orders.cancel_all, 10),
        "/v5/order/realtime": _Private("GET", orders.realtime, 50),
        "/v5/order/history": _Private("GET", orders.history, 50),
        "/v5/execution/list": _Private("GET", orders.executions, 50),
        "/v5/position/list": _Private("GET", account.positions, 50),
        "/v5/position/set-leverage": _Private("POST", account.set_leverage, 10),
        "/v5/position/trading-stop": _Private("POST", account.trading_stop, 10),
        "/v5/position/closed-pnl": _Private("GET", account.closed_pnl, 50),
        "/v5/account/wallet-balance": _Private("GET", account.wallet, 50, category=False),
        # account discovery that generic clients (ccxt) make before trading
        "/v5/account/info": _Private("GET", account.account_info, 50, category=False),
        "/v5/user/query-api": _Private("GET", account.api_key_info, 10, category=False),
        "/v5/asset/coin/query-info": _Private("GET", account.coin_info, 10, category=False),
    }
