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
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qsl

import attrs
import orjson
from loguru import logger

from ..bybit.auth import sign
from .accounts import Account, Order
from .errors import VenueError
from .params import opt_int, opt_str, req_str
from .rest_market import MarketEndpoints, Params, Result, page_cursor
from .rows import execution_row

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
class _Route:
    method: str
    handler: Callable[[RestApi, Account | None, Params], Result]
    private: bool
    limit: int


class RestApi(MarketEndpoints):
    """The REST endpoints of the simulated exchange."""

    # ------------------------------------------------------------- entry
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
        route = _ROUTES.get(path)
        if route is None or route.method != method:
            what = "route not found" if route is None else f"route not found: use {route.method}"
            return Reply(404, envelope(10017, what, {}, now))
        extra: list[tuple[bytes, bytes]] = []
        try:
            payload = query.decode() if method == "GET" else body.decode()
        except UnicodeDecodeError:
            return Reply(200, envelope(10001, "params error: request is not UTF-8", {}, now))
        account: Account | None = None
        try:
            if route.private:
                account = self._authenticate(headers, payload, now)
                extra = self._rate_limit(account, path, route.limit, now)
            if forced_code is not None:
                code, msg, reset_ms = forced_code
                if code == 10006:
                    extra = [
                        (b"x-bapi-limit", str(route.limit).encode()),
                        (b"x-bapi-limit-status", b"0"),
                        (b"x-bapi-limit-reset-timestamp", str(now + reset_ms).encode()),
                    ]
                raise VenueError(code, msg or _DEFAULT_MSGS.get(code, "simulated error"))  # noqa: TRY301
            params = self._params(method, payload)
            result = route.handler(self, account, params)
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
            reset = window[0] + 1000
            headers = [
                (b"x-bapi-limit", str(limit).encode()),
                (b"x-bapi-limit-status", b"0"),
                (b"x-bapi-limit-reset-timestamp", str(reset).encode()),
            ]
            raise _Limited(headers)
        window.append(now)
        return [
            (b"x-bapi-limit", str(limit).encode()),
            (b"x-bapi-limit-status", str(limit - len(window)).encode()),
            (b"x-bapi-limit-reset-timestamp", str(now).encode()),
        ]

    # ------------------------------------------------------------- trade
    def create(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        order = self.ex.create_order(account, params)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def amend(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        order = self.ex.amend_order(account, params)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def cancel(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        order = self.ex.cancel_order(account, params)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def cancel_all(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        orders = self.ex.cancel_all(account, params)
        return {
            "list": [{"orderId": o.order_id, "orderLinkId": o.order_link_id} for o in orders],
            "success": "1",
        }

    def _order_filter(self, params: Params) -> Callable[[Order], bool]:
        symbol = self._symbol(params, required=False)
        base = opt_str(params, "baseCoin")
        settle = opt_str(params, "settleCoin")
        if symbol is None and base is None and settle is None:
            raise VenueError(
                10001,
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin",
            )
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        specs = self.ex.specs

        def match(order: Order) -> bool:
            return (
                (symbol is None or order.symbol == symbol)
                and (base is None or specs[order.symbol].base == base)
                and (settle is None or settle == "USDT")
                and (order_id is None or order.order_id == order_id)
                and (link is None or order.order_link_id == link)
            )

        return match

    def realtime(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        match = self._order_filter(params)
        open_only = opt_int(params, "openOnly", 0, 0, 2)
        by_id = opt_str(params, "orderId") is not None or opt_str(params, "orderLinkId") is not None
        kinds = opt_str(params, "orderFilter")
        if kinds is not None and kinds not in _ORDER_FILTERS:
            raise VenueError(10001, f"params error: orderFilter invalid: {kinds}")
        if kinds not in (None, "Order"):
            # conditional orders are not modelled; a position's Full-mode stops live on
            # the position, not in this list
            return self._order_page([], params, 20)
        open_orders = sorted(account.open_orders.values(), key=_newest)
        closed = sorted(account.recent_closed, key=_newest)
        if by_id:
            orders = open_orders + closed
        elif open_only == 0:
            orders = open_orders
        else:
            orders = closed
        return self._order_page([o for o in orders if match(o)], params, 20)

    def history(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        symbol = self._symbol(params, required=False)
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        status = opt_str(params, "orderStatus")
        start = opt_int(params, "startTime", 0, 0, 2**62)
        end = opt_int(params, "endTime", 2**62, 0, 2**62)
        orders = [
            o
            for o in sorted(account.orders.values(), key=_newest)
            if (symbol is None or o.symbol == symbol)
            and (order_id is None or o.order_id == order_id)
            and (link is None or o.order_link_id == link)
            and (status is None or o.status == status)
            and start <= o.created_ms <= end
        ]
        return self._order_page(orders, params, 20)

    def _order_page(self, orders: list[Order], params: Params, default: int) -> Result:
        limit = opt_int(params, "limit", default, 1, 50)
        start = page_cursor(params)
        page = orders[start : start + limit]
        return {
            "list": [self.ex.order_row(o) for o in page],
            "nextPageCursor": str(start + limit) if start + limit < len(orders) else "",
            "category": "linear",
        }

    def executions(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        symbol = self._symbol(params, required=False)
        order_id = opt_str(params, "orderId")
        link = opt_str(params, "orderLinkId")
        exec_type = opt_str(params, "execType")
        limit = opt_int(params, "limit", 50, 1, 100)
        start_t = opt_int(params, "startTime", 0, 0, 2**62)
        end_t = opt_int(params, "endTime", 2**62, 0, 2**62)
        fills = [
            e
            for e in reversed(account.executions)
            if (symbol is None or e.order.symbol == symbol)
            and (order_id is None or e.order.order_id == order_id)
            and (link is None or e.order.order_link_id == link)
            and (exec_type is None or exec_type == "Trade")
            and start_t <= e.exec_ms <= end_t
        ]
        start = page_cursor(params)
        page = fills[start : start + limit]
        return {
            "nextPageCursor": str(start + limit) if start + limit < len(fills) else "",
            "category": "linear",
            "list": [execution_row(e, self.ex.specs[e.order.symbol], stream=False) for e in page],
        }

    def positions(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        symbol = self._symbol(params, required=False)
        settle = opt_str(params, "settleCoin")
        limit = opt_int(params, "limit", 20, 1, 200)
        if symbol is not None:
            names = [symbol]
        elif settle is not None:
            names = [s for s, p in sorted(account.positions.items()) if p.size != 0]
            if settle != "USDT":
                names = []
        else:
            raise VenueError(
                10001, "Missing some parameters that must be filled in, symbol or settleCoin"
            )
        if symbol is not None:
            listed = self.ex.position_rows(account, symbol, stream=False)
        else:  # settleCoin: only the rows that hold a position
            listed = [self.ex.position_row(account, s, stream=False) for s in names]
        start = page_cursor(params)
        page = listed[start : start + limit]
        return {
            "list": page,
            "nextPageCursor": str(start + limit) if start + limit < len(listed) else "",
            "category": "linear",
        }

    def trading_stop(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        self.ex.set_trading_stop(account, params)
        return {}

    def closed_pnl(self, account: Account | None, params: Params) -> Result:
        """``/v5/position/closed-pnl``: one row per closing order, newest first (by
        createdTime, as Bybit sorts them); the window ``startTime``..``endTime`` is on
        createdTime too (at most 7 days, default the last 7 days)."""
        assert account is not None
        self._category(params)
        symbol = self._symbol(params, required=False)
        now = self.ex.now_ms()
        start_t = opt_int(params, "startTime", -1, 0, 2**62)
        end_t = opt_int(params, "endTime", -1, 0, 2**62)
        if start_t < 0 and end_t < 0:
            end_t, start_t = now, now - _WEEK_MS
        elif start_t < 0:
            start_t = end_t - _WEEK_MS
        elif end_t < 0:
            end_t = start_t + _WEEK_MS
        if end_t < start_t:
            raise VenueError(10001, "params error: endTime must not be before startTime")
        if end_t - start_t > _WEEK_MS:
            raise VenueError(10001, "params error: the time range must not exceed 7 days")
        limit = opt_int(params, "limit", 50, 1, 100)
        records = [
            r
            for r in sorted(
                account.closed_pnl.values(),
                key=lambda r: (-r.created_ms, r.order.order_id),
            )
            if (symbol is None or r.order.symbol == symbol) and start_t <= r.created_ms <= end_t
        ]
        start = page_cursor(params)
        page = records[start : start + limit]
        return {
            "nextPageCursor": str(start + limit) if start + limit < len(records) else "",
            "category": "linear",
            "list": [self.ex.closed_pnl_row(r) for r in page],
        }

    def set_leverage(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        self._category(params)
        self.ex.set_leverage(account, params)
        return {}

    def wallet(self, account: Account | None, params: Params) -> Result:
        assert account is not None
        account_type = req_str(params, "accountType")
        if account_type != "UNIFIED":
            raise VenueError(10001, "accountType only support UNIFIED")
        coin = opt_str(params, "coin")
        row = self.ex.wallet_row(account)
        if coin is not None and "USDT" not in coin.split(","):
            row["coin"] = []
        return {"list": [row]}

    # ------------------------------------------------ account discovery
    def account_info(self, account: Account | None, _params: Params) -> Result:
        """``/v5/account/info``: a unified trading account (UTA 2.0), regular margin."""
        assert account is not None
        return {
            "marginMode": "REGULAR_MARGIN",
            "updatedTime": str(self.ex.now_ms()),
            "unifiedMarginStatus": 5,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def api_key_info(self, account: Account | None, _params: Params) -> Result:
        """``/v5/user/query-api``: this key, read-write, trading permissions, UTA."""
        assert account is not None
        return {
            "id": "1",
            "note": "simulator",
            "apiKey": account.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": [],
                "Wallet": ["AccountTransfer"],
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 1,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def coin_info(self, account: Account | None, _params: Params) -> Result:
        """``/v5/asset/coin/query-info``: the one coin the simulator knows, USDT."""
        assert account is not None
        chain = {
            "chainType": "ERC20",
            "confirmation": "12",
            "withdrawFee": "1",
            "depositMin": "0",
            "withdrawMin": "2",
            "chain": "ETH",
            "chainDeposit": "1",
            "chainWithdraw": "1",
            "minAccuracy": "6",
            "withdrawPercentageFee": "0",
        }
        return {"rows": [{"name": "USDT", "coin": "USDT", "remainAmount": "1000000",
                          "chains": [chain]}]}  # fmt: skip


class _Limited(VenueError):
    """10006 with the headers that say when the window resets."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(10006, "Too many visits!")
        self.headers = headers


def _newest(order: Order) -> tuple[int, str]:
    return (-order.created_ms, order.order_id)


_WEEK_MS = 7 * 86_400_000
_ORDER_FILTERS = ("Order", "StopOrder", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder")

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

_ROUTES: dict[str, _Route] = {
    "/v5/market/time": _Route("GET", RestApi.market_time, False, 0),
    "/v5/market/instruments-info": _Route("GET", RestApi.instruments, False, 0),
    "/v5/market/tickers": _Route("GET", RestApi.tickers, False, 0),
    "/v5/market/orderbook": _Route("GET", RestApi.orderbook, False, 0),
    "/v5/market/recent-trade": _Route("GET", RestApi.recent_trade, False, 0),
    "/v5/market/kline": _Route("GET", RestApi.kline, False, 0),
    "/v5/order/create": _Route("POST", RestApi.create, True, 10),
    "/v5/order/amend": _Route("POST", RestApi.amend, True, 10),
    "/v5/order/cancel": _Route("POST", RestApi.cancel, True, 10),
    "/v5/order/cancel-all": _Route("POST", RestApi.cancel_all, True, 10),
    "/v5/order/realtime": _Route("GET", RestApi.realtime, True, 50),
    "/v5/order/history": _Route("GET", RestApi.history, True, 50),
    "/v5/execution/list": _Route("GET", RestApi.executions, True, 50),
    "/v5/position/list": _Route("GET", RestApi.positions, True, 50),
    "/v5/position/set-leverage": _Route("POST", RestApi.set_leverage, True, 10),
    "/v5/position/trading-stop": _Route("POST", RestApi.trading_stop, True, 10),
    "/v5/position/closed-pnl": _Route("GET", RestApi.closed_pnl, True, 50),
    "/v5/account/wallet-balance": _Route("GET", RestApi.wallet, True, 50),
    # account discovery that generic clients (ccxt) make before trading
    "/v5/account/info": _Route("GET", RestApi.account_info, True, 50),
    "/v5/user/query-api": _Route("GET", RestApi.api_key_info, True, 10),
    "/v5/asset/coin/query-info": _Route("GET", RestApi.coin_info, True, 10),
}
