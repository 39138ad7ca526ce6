"""Bybit v5 REST client: signed requests, typed results, retries, idempotent order entry.

``BybitRest`` owns no connection: the caller injects an ``httpx.AsyncClient`` whose
``base_url`` points at Bybit (or the simulator), and a test swaps in
``httpx.MockTransport``. Every request goes through ``_send_once`` (one signed attempt),
and two loops decide what happens after a failure:

* ``_call`` (everything but order create): retries what ``errors`` marks retryable --
  network errors, timeouts, 5xx/429, 10000/10016 -- with exponential backoff and jitter,
  bounded by ``RetryPolicy.max_attempts`` and ``total_budget_s``. 10006 waits until
  ``X-Bapi-Limit-Reset-Timestamp`` (bounded); 10002 re-syncs the clock offset from
  ``/v5/market/time`` and retries at once. Cancel/amend/set-leverage are safe to repeat.
* ``place_order``: an order create is never repeated blindly. The body (with the
  intent's ``orderLinkId``) is serialized once; a reply that leaves the outcome unknown
  (timeout or broken connection after sending, 5xx, 10000/10016, an unreadable body) or
  a 110072 duplicate is resolved by *reading* the order by ``orderLinkId``
  (``order/realtime``, then ``order/history``). If it exists, that is the result. Only
  when the read says it does not exist is the same body sent again -- and then Bybit's
  own orderLinkId uniqueness turns a late-arriving first copy into a 110072, which is
  resolved by reading again. Rejections that prove nothing was executed (10006, 10002,
  connect failures) are retried as such. One deadline (``total_budget_s`` from the
  start of the call) covers pacing, sends, backoffs, the settle pause and the
  read-backs, so the call ends within the budget plus one request timeout. Once a
  create of the call may have executed, every way of ending without a confirmed order
  (out of time or attempts, a 110072 whose order is not visible yet, a refused resend)
  is ``AmbiguousOutcome``, never a rejection.

Signing (``auth.py``): every attempt gets a fresh timestamp, ``clock() + offset``. A GET's
query string is built once, signed, and sent as those exact bytes in the URL; a POST's
JSON is serialized once (compact) and sent as the signed bytes.

Pacing: order create/amend/cancel/cancel-all/set-leverage pass a client-side
sliding-window limiter (10/s each, Bybit's default), and any path whose last
``X-Bapi-Limit-Status`` says it is (nearly) exhausted waits for its reset first.

Secrets: the key and secret live in ``Credentials`` (masked ``repr``); log lines and
errors carry the path, retCode and orderLinkId, never headers, key, secret or signature.
Bybit's own text (``retMsg``, an HTTP error body) passes ``auth.redact`` first: a 10004
echoes the signed string, API key included.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
import httpx
import orjson
import trio
from loguru import logger

from scalper.core.model import (
    Fill,
    Instrument,
    OrderIntent,
    OrderType,
    OrderUpdate,
    PositionSnapshot,
    TickerStat,
)

# Credentials and wall_clock_ms live in auth; re-exported here (see __all__) because
# scalper.app and scalper.replay import them from this module.
from .auth import Credentials, redact, rest_signature, wall_clock_ms
from .backoff import backoff_delay
from .errors import (
    AmbiguousOutcome,
    BybitError,
    DuplicateOrder,
    ExchangeError,
    HTTPStatusError,
    NetworkError,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerBusy,
    TimestampError,
    TransportError,
    exchange_error,
)
from .parse import (
    BookMessage,
    ParseError,
    ParseStats,
    Ticker,
    WalletBalance,
    book_from_rest,
    fill_from_wire,
    instrument_from_wire,
    order_from_wire,
    position_from_wire,
    ticker_from_wire,
    wallet_from_wire,
)

__all__ = [
    "BybitRest",
    "Credentials",
    "OrderRef",
    "RateLimitState",
    "RetryPolicy",
    "wall_clock_ms",
]

_T = TypeVar("_T")

CATEGORY: Final = "linear"
ORDER_CREATE: Final = "/v5/order/create"
ORDER_AMEND: Final = "/v5/order/amend"
ORDER_CANCEL: Final = "/v5/order/cancel"
ORDER_CANCEL_ALL: Final = "/v5/order/cancel-all"
ORDER_REALTIME: Final = "/v5/order/realtime"
ORDER_HISTORY: Final = "/v5/order/history"
SET_LEVERAGE: Final = "/v5/position/set-leverage"

#: Client-side caps (requests per second) for Bybit's 10/s order-entry endpoints.
DEFAULT_PATH_LIMITS: Final[Mapping[str, int]] = {
    ORDER_CREATE: 10,
    ORDER_AMEND: 10,
    ORDER_CANCEL: 10,
    ORDER_CANCEL_ALL: 10,
    SET_LEVERAGE: 10,
}

#: retCodes after which an order create may or may not exist: read before resending.
_UNKNOWN_OUTCOME = (AmbiguousOutcome, ServerBusy, ProtocolError, DuplicateOrder, HTTPStatusError)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Bounds on retrying one call."""

    #: sends per call, first try included
    max_attempts: int = 5
    #: first backoff delay; doubles per attempt, with jitter in [50 %, 100 %]
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    #: no new attempt starts after this much time since the call began
    total_budget_s: float = 30.0
    #: longest wait for a 10006 / exhausted-limit reset
    max_rate_limit_wait_s: float = 10.0
    #: pause before reading an order whose create had an unknown outcome, so a create
    #: still in flight on the server has landed
    settle_delay_s: float = 0.3


@attrs.frozen
class OrderRef:
    """The two ids of one order, as order-entry replies echo them."""

    order_id: str
    order_link_id: str


@attrs.frozen
class RateLimitState:
    """The last rate-limit headers seen for one path."""

    limit: int | None
    remaining: int | None
    reset_ms: int | None


class _WindowLimiter:
    """At most ``rate`` sends per rolling second (trio time, so MockClock drives it)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._sent: deque[float] = deque()
        self._lock = trio.Lock()

    async def acquire(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        async with self._lock:
            while True:
                now = trio.current_time()
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if len(self._sent) < self._rate:
                    self._sent.append(now)
                    return
                await sleep(1.0 - (now - self._sent[0]) + 1e-3)


def _dec_str(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain notation, never exponent form."""
    return format(value, "f")


def _query(params: Mapping[str, Any]) -> str:
    """``k=v&...`` in the given order, None dropped. Values are ids, symbols, numbers
    and Bybit's own (already URL-encoded) cursors, so they are sent verbatim."""
    return "&".join(f"{k}={v}" for k, v in params.items() if v is not None)


class BybitRest:
    """Typed, signed, retrying client for the Bybit v5 REST endpoints the bot uses.

    Call ``await sync_clock()`` once at start (and it is re-run on every 10002).
    ``credentials`` may be None for public market data only.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: Credentials | None = None,
        *,
        recv_window_ms: int = 5000,
        clock: Callable[[], float] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        retry: RetryPolicy = RetryPolicy(),  # frozen: sharing is safe
        path_limits: Mapping[str, int] = DEFAULT_PATH_LIMITS,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._creds = credentials
        self._recv_window_ms = recv_window_ms
        self._clock = clock
        self._sleep = sleep
        self.retry = retry
        self._rng = rng or random.Random()
        self._limiters = {path: _WindowLimiter(rate) for path, rate in path_limits.items()}
        #: exchange time minus local clock, ms (from the last sync)
        self.clock_offset_ms = 0
        #: last rate-limit headers per path
        self.rate_limits: dict[str, RateLimitState] = {}
        #: rows of list replies that could not be parsed (skipped)
        self.parse_stats = ParseStats(name="rest")
        #: order creates actually put on the wire (evidence for the idempotency tests)
        self.create_sends = 0

    def __repr__(self) -> str:
        return f"BybitRest(base_url={str(self._client.base_url)!r}, credentials={self._creds!r})"

    # ------------------------------------------------------------ time

    def now_ms(self) -> int:
        """Our best estimate of the exchange's clock, ms."""
        return int(self._clock()) + self.clock_offset_ms

    async def server_time_ms(self, *, deadline: float | None = None) -> int:
        """The exchange's time, ms (GET /v5/market/time). ``deadline``: as for ``order``."""
        result = await self._call("GET", "/v5/market/time", {}, signed=False, deadline=deadline)
        try:
            return int(result["timeNano"]) // 1_000_000
        except (KeyError, TypeError, ValueError):
            try:
                return int(result["timeSecond"]) * 1000
            except (KeyError, TypeError, ValueError) as exc:
                raise ProtocolError("/v5/market/time: no usable timeNano/timeSecond") from exc

    async def sync_clock(self, *, deadline: float | None = None) -> int:
        """Measure and keep the exchange-minus-local clock offset; returns it (ms)."""
        before = self._clock()
        server = await self.server_time_ms(deadline=deadline)
        after = self._clock()
        self.clock_offset_ms = int(server - (before + after) / 2)
        logger.bind(offset_ms=self.clock_offset_ms).info(
            "exchange clock offset {} ms", self.clock_offset_ms
        )
        return self.clock_offset_ms

    # ------------------------------------------------------------ market data

    async def instruments(self) -> list[Instrument]:
        """Every trading linear instrument, paging through ``nextPageCursor``."""
        out: list[Instrument] = []
        for row in await self._paged(
            "/v5/market/instruments-info", {"category": CATEGORY, "limit": 1000}, signed=False
        ):
            try:
                out.append(instrument_from_wire(row))
            except ParseError as exc:
                self.parse_stats.record(exc.kind, f"instrument {row.get('symbol')}: {exc}")
        return out

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        """Linear tickers (all symbols, or one). Bad rows are skipped and counted."""
        result = await self._call(
            "GET", "/v5/market/tickers", {"category": CATEGORY, "symbol": symbol}, signed=False
        )
        out: list[Ticker] = []
        for row in self._list(result, "/v5/market/tickers"):
            try:
                out.append(ticker_from_wire(row))
            except ParseError as exc:
                self.parse_stats.record(exc.kind, f"ticker {row.get('symbol')}: {exc}")
        return out

    async def ticker_stats(self) -> list[TickerStat]:
        """The scanner's slice of every linear ticker (rows without the fields are left out)."""
        return [
            TickerStat(
                symbol=t.symbol,
                turnover24h=t.turnover_24h,
                price24h_pcnt=t.price_24h_pcnt,
                last_price=t.last_price,
            )
            for t in await self.tickers()
            if t.turnover_24h is not None
            and t.price_24h_pcnt is not None
            and t.last_price is not None
        ]

    async def orderbook(self, symbol: str, limit: int = 50) -> BookMessage:
        """An L2 snapshot (its ``update_id`` matches the stream's ``u``)."""
        result = await self._call(
            "GET",
            "/v5/market/orderbook",
            {"category": CATEGORY, "symbol": symbol, "limit": limit},
            signed=False,
        )
        return self._parsed(book_from_rest, result, "/v5/market/orderbook")

    # ------------------------------------------------------------ account

    async def wallet_balance(self, coin: str | None = None) -> WalletBalance:
        """The unified account's balances."""
        path = "/v5/account/wallet-balance"
        result = await self._call("GET", path, {"accountType": "UNIFIED", "coin": coin})
        rows = self._list(result, path)
        if not rows:
            raise ProtocolError(f"{path}: empty list")
        return self._parsed(wallet_from_wire, rows[0], path)

    async def position(self, symbol: str) -> PositionSnapshot:
        """The (one-way) position on ``symbol``; flat when Bybit lists none."""
        path = "/v5/position/list"
        result = await self._call("GET", path, {"category": CATEGORY, "symbol": symbol})
        snaps = [self._parsed(position_from_wire, row, path) for row in self._list(result, path)]
        open_ = [s for s in snaps if s.symbol == symbol and not s.is_flat]
        if len(open_) > 1:
            raise ProtocolError(f"{path}: {len(open_)} open positions on {symbol} (hedge mode?)")
        if open_:
            return open_[0]
        same = [s for s in snaps if s.symbol == symbol]
        return same[0] if same else PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))

    async def open_positions(self) -> list[PositionSnapshot]:
        """Every non-flat USDT-settled position."""
        path = "/v5/position/list"
        rows = await self._paged(path, {"category": CATEGORY, "settleCoin": "USDT", "limit": 200})
        snaps = [self._parsed(position_from_wire, row, path) for row in rows]
        return [s for s in snaps if not s.is_flat]

    async def wallet_equity(self) -> Decimal:
        """Equity of the USDT coin (the account's USD ``totalEquity`` if no USDT row)."""
        wallet = await self.wallet_balance("USDT")
        usdt = wallet.coin("USDT")
        return usdt.equity if usdt is not None else wallet.total_equity

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set buy and sell leverage; "not modified" (110043) counts as success."""
        lev = _dec_str(leverage)
        try:
            await self._call(
                "POST",
                SET_LEVERAGE,
                {"category": CATEGORY, "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev},
            )
        except ExchangeError as exc:
            if exc.ret_code != 110043:
                raise

    # ------------------------------------------------------------ orders

    async def place_order(self, intent: OrderIntent) -> str:
        """Place ``intent`` exactly once; returns Bybit's orderId.

        Idempotent by ``intent.order_link_id`` (see the module docstring): whatever the
        faults, at most one order with this id exists, and if it exists its id is
        returned. Raises ``AmbiguousOutcome`` when the outcome could not be resolved
        within the retry bounds (the order may exist: reconcile) -- including a 110072
        whose order the read-back cannot see yet, and any failure after a create of
        this call may have executed -- or a final ``ExchangeError`` / 4xx
        ``HTTPStatusError`` when Bybit rejected it and nothing was executed.
        """
        body = self._json(self._order_body(intent))
        link_id = intent.order_link_id
        log = logger.bind(order_link_id=link_id, symbol=intent.symbol, path=ORDER_CREATE)
        policy = self.retry
        # One deadline for the whole call: pacing, sends, backoffs and read-backs all
        # spend it, so place_order ends within total_budget_s (+ one request timeout).
        deadline = trio.current_time() + policy.total_budget_s
        #: a create of this call may have executed (its outcome was never settled)
        maybe_sent = False
        last: BybitError | None = None
        attempt = 0
        while True:
            attempt += 1
            if not await self._pace(ORDER_CREATE, deadline):
                raise self._out_of_time(link_id, attempt - 1, last, maybe_sent) from last
            self.create_sends += 1
            try:
                result, _ = await self._send_once("POST", ORDER_CREATE, "", body)
                order_id = result.get("orderId")
                if type(order_id) is not str or not order_id:
                    raise ProtocolError(f"{ORDER_CREATE}: reply without orderId")
            except _UNKNOWN_OUTCOME as exc:
                if isinstance(exc, HTTPStatusError) and not exc.retryable:
                    # 4xx: this request was refused before it could execute
                    if maybe_sent:  # ... but an earlier copy may have
                        raise self._out_of_time(link_id, attempt, exc, True) from exc
                    raise
                maybe_sent = True
                last = exc
                log.warning("order create outcome unknown ({}); reading it back", exc)
                existing = await self._resolve_create(intent, exc, deadline)
                if existing is not None:
                    log.bind(order_id=existing.order_id).info(
                        "order {} exists ({}): not resending", link_id, existing.status.value
                    )
                    return existing.order_id
                if isinstance(exc, DuplicateOrder):
                    # The id is taken, so an order with it exists or existed, but the
                    # read cannot see it (order/history lags). Never resend, and never
                    # report a rejection: the caller must confirm by reading later.
                    raise AmbiguousOutcome(
                        f"order create {link_id}: orderLinkId already used (110072) but the "
                        "order is not visible yet: it may exist"
                    ) from exc
                pause = backoff_delay(attempt, policy.base_delay_s, policy.max_delay_s, self._rng)
                if attempt >= policy.max_attempts or trio.current_time() + pause > deadline:
                    raise AmbiguousOutcome(
                        f"order create {link_id}: not placed after {attempt} attempts"
                    ) from exc
                log.info("order {} does not exist: resending the same request", link_id)
                await self._sleep(pause)
            except BybitError as exc:
                last = exc
                try:
                    delay = await self._retry_delay(exc, attempt, deadline)
                except BybitError as resync_exc:  # the 10002 clock re-sync failed
                    if maybe_sent:
                        raise self._out_of_time(link_id, attempt, resync_exc, True) from resync_exc
                    raise
                if delay is None:
                    log.bind(ret_code=getattr(exc, "ret_code", None)).warning(
                        "order create {} failed: {}", link_id, exc
                    )
                    if maybe_sent:
                        # Out of attempts or time, or this resend was refused -- but an
                        # earlier create of this call may have executed (a refusal of the
                        # copy, e.g. 110007 because the first took the margin, says
                        # nothing about it): never report that as a rejection.
                        raise self._out_of_time(link_id, attempt, exc, maybe_sent) from exc
                    raise
                log.bind(ret_code=getattr(exc, "ret_code", None)).info(
                    "order create {} not executed ({}); retrying in {:.3f}s", link_id, exc, delay
                )
                await self._sleep(delay)
            else:
                log.bind(order_id=order_id).debug("order {} placed", link_id)
                return order_id

    @staticmethod
    def _out_of_time(
        link_id: str, attempts: int, last: BybitError | None, maybe_sent: bool
    ) -> BybitError:
        """The error for an order create that ended unconfirmed (out of attempts or
        time, or a resend refused): ambiguous if any create of this call may have
        executed, else "not sent" (a timeout)."""
        what = f"order create {link_id}: not confirmed after {attempts} attempt(s)"
        if last is not None:
            what += f"; last: {last}"
        err: BybitError
        if maybe_sent:
            err = AmbiguousOutcome(f"{what}; an earlier create may have executed")
        else:
            err = RequestTimeout(f"{what}; nothing was executed")
        err.__cause__ = last
        return err

    async def _resolve_create(
        self, intent: OrderIntent, cause: BybitError, deadline: float
    ) -> OrderUpdate | None:
        """Read the order whose create had an unknown outcome (None: it does not exist).

        Spends the caller's ``deadline``; running out of it is ``AmbiguousOutcome``.
        """
        link_id = intent.order_link_id
        if trio.current_time() + self.retry.settle_delay_s >= deadline:
            raise AmbiguousOutcome(
                f"order create {link_id}: outcome unknown ({cause}) and no time left to read it"
            ) from cause
        await self._sleep(self.retry.settle_delay_s)
        try:
            return await self.order(intent.symbol, order_link_id=link_id, deadline=deadline)
        except BybitError as exc:
            raise AmbiguousOutcome(
                f"order create {link_id}: outcome unknown ({cause}) and the "
                f"read-back failed ({exc})"
            ) from exc

    async def amend_order(
        self,
        symbol: str,
        *,
        order_link_id: str | None = None,
        order_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> str:
        """Change qty and/or price of a working order; returns its orderId."""
        self._need_id(order_link_id, order_id)
        result = await self._call(
            "POST",
            ORDER_AMEND,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": order_link_id,
                "qty": None if qty is None else _dec_str(qty),
                "price": None if price is None else _dec_str(price),
            },
        )
        return str(result.get("orderId", order_id or ""))

    async def cancel_order(
        self, symbol: str, order_link_id: str | None = None, *, order_id: str | None = None
    ) -> None:
        """Cancel one order (safe to repeat).

        Raises ``OrderAlreadyFinal`` (110008/110010: filled or cancelled already) and
        ``OrderNotFound`` (110001: unknown, or gone) so the caller can read the final
        state; both mean "nothing left to cancel".
        """
        self._need_id(order_link_id, order_id)
        await self._call(
            "POST",
            ORDER_CANCEL,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": order_link_id,
            },
        )

    async def cancel_all(self, symbol: str) -> list[OrderRef]:
        """Cancel every open order on ``symbol``; returns what was cancelled."""
        result = await self._call(
            "POST", ORDER_CANCEL_ALL, {"category": CATEGORY, "symbol": symbol}
        )
        return [
            OrderRef(str(r.get("orderId", "")), str(r.get("orderLinkId", "")))
            for r in self._list(result, ORDER_CANCEL_ALL)
        ]

    async def order(
        self,
        symbol: str,
        order_link_id: str | None = None,
        *,
        order_id: str | None = None,
        deadline: float | None = None,
    ) -> OrderUpdate | None:
        """One order by client or exchange id: ``order/realtime``, then ``order/history``.

        None when neither knows it. ``deadline`` (trio time) bounds both reads together;
        without it each read has its own ``total_budget_s``.
        """
        self._need_id(order_link_id, order_id)
        params = {
            "category": CATEGORY,
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
        }
        for path in (ORDER_REALTIME, ORDER_HISTORY):
            result = await self._call("GET", path, params, deadline=deadline)
            for row in self._list(result, path):
                update = self._parsed(order_from_wire, row, path)
                if (order_link_id is None or update.order_link_id == order_link_id) and (
                    order_id is None or update.order_id == order_id
                ):
                    return update
        return None

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        """Every working order on ``symbol``, or on every USDT contract (all pages)."""
        where = {"symbol": symbol} if symbol else {"settleCoin": "USDT"}
        rows = await self._paged(
            ORDER_REALTIME, {"category": CATEGORY, **where, "openOnly": 0, "limit": 50}
        )
        return [self._parsed(order_from_wire, row, ORDER_REALTIME) for row in rows]

    async def order_history(
        self,
        symbol: str,
        *,
        order_link_id: str | None = None,
        order_id: str | None = None,
        limit: int = 50,
    ) -> list[OrderUpdate]:
        """Recent closed orders on ``symbol``, newest first (one page of ``limit``)."""
        result = await self._call(
            "GET",
            ORDER_HISTORY,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": order_link_id,
                "limit": limit,
            },
        )
        return [
            self._parsed(order_from_wire, row, ORDER_HISTORY)
            for row in self._list(result, ORDER_HISTORY)
        ]

    async def executions(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        order_link_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 100,
    ) -> list[Fill]:
        """Our trade fills on ``symbol``, newest first (one page; funding etc. left out)."""
        path = "/v5/execution/list"
        result = await self._call(
            "GET",
            path,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": order_link_id,
                "startTime": start_ms,
                "limit": limit,
            },
        )
        fills: list[Fill] = []
        for row in self._list(result, path):
            fill = self._parsed(fill_from_wire, row, path)
            if fill is not None:
                fills.append(fill)
        return fills

    # ------------------------------------------------------------ plumbing

    @staticmethod
    def _order_body(intent: OrderIntent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": intent.symbol,
            "side": intent.side.value,
            "orderType": intent.order_type.value,
            "qty": _dec_str(intent.qty),
        }
        if intent.price is not None:
            body["price"] = _dec_str(intent.price)
        body["timeInForce"] = (
            "IOC" if intent.order_type is OrderType.MARKET else intent.time_in_force.value
        )
        body["positionIdx"] = 0
        body["orderLinkId"] = intent.order_link_id
        body["reduceOnly"] = intent.reduce_only
        return body

    @staticmethod
    def _json(params: Mapping[str, Any]) -> str:
        """Compact JSON, None dropped: these exact bytes are signed and sent."""
        return orjson.dumps({k: v for k, v in params.items() if v is not None}).decode()

    @staticmethod
    def _need_id(order_link_id: str | None, order_id: str | None) -> None:
        if not order_link_id and not order_id:
            raise ValueError("give order_link_id or order_id")

    @staticmethod
    def _list(result: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        rows = result.get("list", [])
        if type(rows) is not list or any(type(r) is not dict for r in rows):
            raise ProtocolError(f"{path}: result.list is not a list of objects")
        return rows

    @staticmethod
    def _parsed(fn: Callable[[Mapping[str, Any]], _T], row: Mapping[str, Any], path: str) -> _T:
        try:
            return fn(row)
        except ParseError as exc:
            raise ParseError(exc.kind, f"{path}: {exc}") from exc

    async def _paged(
        self, path: str, params: Mapping[str, Any], *, signed: bool = True, max_pages: int = 50
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(max_pages):
            result = await self._call("GET", path, {**params, "cursor": cursor}, signed=signed)
            rows.extend(self._list(result, path))
            nxt = result.get("nextPageCursor")
            if not nxt or type(nxt) is not str or nxt == cursor:
                return rows
            cursor = nxt
        raise ProtocolError(f"{path}: more than {max_pages} pages")

    async def _retry_delay(self, exc: BybitError, attempt: int, deadline: float) -> float | None:
        """How long to wait before retrying after ``exc``; None means give up (raise)."""
        p = self.retry
        if not exc.retryable or attempt >= p.max_attempts:
            return None
        delay: float
        if isinstance(exc, TimestampError):
            await self.sync_clock(deadline=deadline)
            delay = 0.0
        elif isinstance(exc, RateLimited) and exc.reset_ms is not None:
            wait_ms = exc.reset_ms - self.now_ms()
            delay = min(p.max_rate_limit_wait_s, max(0.0, wait_ms / 1000.0)) + 0.01
        else:
            delay = backoff_delay(attempt, p.base_delay_s, p.max_delay_s, self._rng)
        if trio.current_time() + delay > deadline:
            return None
        return delay

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        signed: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried within ``self.retry`` for retryable failures.

        Used for reads and for writes that are safe to repeat (cancel, amend, leverage);
        never for order create. ``deadline`` (trio time) is a caller's overall bound
        (e.g. place_order's read-back): the call never starts a send, a backoff or a
        pacing wait that would end after it. Running out before a send is
        ``RequestTimeout``.
        """
        if method == "GET":
            query, body = _query(params), ""
        else:
            query, body = "", self._json(params)
        own = trio.current_time() + self.retry.total_budget_s
        deadline = own if deadline is None else min(deadline, own)
        last: BybitError | None = None
        attempt = 0
        while True:
            attempt += 1
            if not await self._pace(path, deadline):
                what = f"{method} {path}: retry budget used up before attempt {attempt}"
                raise RequestTimeout(what if last is None else f"{what}; last: {last}") from last
            try:
                result, _ = await self._send_once(method, path, query, body, signed=signed)
            except BybitError as exc:
                last = exc
                delay = await self._retry_delay(exc, attempt, deadline)
                log = logger.bind(path=path, ret_code=getattr(exc, "ret_code", None))
                if delay is None:
                    log.warning("{} {} failed after {} attempt(s): {}", method, path, attempt, exc)
                    raise
                log.info(
                    "{} {} failed ({}); retry {} in {:.3f}s", method, path, exc, attempt, delay
                )
                await self._sleep(delay)
            else:
                return result

    async def _pace(self, path: str, deadline: float) -> bool:
        """Stay under the limits: the client-side window, then the server's own counter.

        False (nothing waited past it) when the wait would not end before ``deadline``:
        pacing spends the caller's budget like any other wait.
        """
        if trio.current_time() >= deadline:
            return False
        limiter = self._limiters.get(path)
        if limiter is not None:
            with trio.move_on_at(deadline) as scope:
                await limiter.acquire(self._sleep)
            if scope.cancelled_caught:
                return False
        state = self.rate_limits.get(path)
        if state is None or state.remaining is None or state.reset_ms is None:
            return True
        if state.remaining <= 1:
            wait_s = (state.reset_ms - self.now_ms()) / 1000.0
            if wait_s > 0:
                wait_s = min(wait_s, self.retry.max_rate_limit_wait_s)
                if trio.current_time() + wait_s >= deadline:
                    return False
                logger.bind(path=path).info(
                    "rate limit nearly used up on {} ({} left): waiting {:.3f}s",
                    path,
                    state.remaining,
                    wait_s,
                )
                await self._sleep(wait_s)
            # the window has rolled over (or will have): do not wait again on old headers
            self.rate_limits[path] = attrs.evolve(state, remaining=None)
        return True

    def _track_limits(self, path: str, headers: httpx.Headers) -> int | None:
        def _int(name: str) -> int | None:
            v = headers.get(name)
            try:
                return int(v) if v is not None else None
            except ValueError:
                return None

        reset = _int("X-Bapi-Limit-Reset-Timestamp")
        remaining = _int("X-Bapi-Limit-Status")
        if remaining is not None or reset is not None:
            self.rate_limits[path] = RateLimitState(_int("X-Bapi-Limit"), remaining, reset)
        return reset

    def _sign_headers(self, payload: str) -> dict[str, str]:
        creds = self._creds
        if creds is None:
            raise ValueError("this call needs API credentials")
        ts = self.now_ms()
        sig = rest_signature(
            creds.api_secret,
            timestamp_ms=ts,
            api_key=creds.api_key,
            recv_window_ms=self._recv_window_ms,
            payload=payload,
        )
        return {
            "X-BAPI-API-KEY": creds.api_key,
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-SIGN": sig,
            "X-BAPI-RECV-WINDOW": str(self._recv_window_ms),
            "X-BAPI-SIGN-TYPE": "2",
        }

    async def _send_once(
        self, method: str, path: str, query: str, body: str, *, signed: bool = True
    ) -> tuple[dict[str, Any], httpx.Headers]:
        """One attempt: sign afresh, send the exact bytes, map the reply to a result or error."""
        is_post = method == "POST"
        headers = self._sign_headers(body if is_post else query) if signed else {}
        url = f"{path}?{query}" if query else path
        try:
            if is_post:
                headers["Content-Type"] = "application/json"
                resp = await self._client.post(url, content=body.encode(), headers=headers)
            else:
                resp = await self._client.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise self._transport_error(method, path, exc) from exc
        reset_ms = self._track_limits(path, resp.headers)
        if resp.status_code != 200:
            raise HTTPStatusError(resp.status_code, path, self._redact(self._status_detail(resp)))
        try:
            env = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"{path}: reply is not JSON") from exc
        if type(env) is not dict or type(env.get("retCode")) is not int:
            raise ProtocolError(f"{path}: reply has no integer retCode")
        code: int = env["retCode"]
        if code != 0:
            msg = env.get("retMsg")
            text = self._redact(msg) if type(msg) is str else ""
            raise exchange_error(code, text, path, reset_ms=reset_ms)
        result = env.get("result")
        if result is None:
            result = {}
        if type(result) is not dict:
            raise ProtocolError(f"{path}: result is not an object")
        return result, resp.headers

    def _redact(self, text: str) -> str:
        """Bybit's text without the signed-string echo or our key/secret (10004 echoes
        ``origin_string[<ts><API key><recv><payload>]``)."""
        creds = self._creds
        if creds is None:
            return redact(text)
        return redact(text, creds.api_key, creds.api_secret)

    @staticmethod
    def _transport_error(method: str, path: str, exc: httpx.TransportError) -> TransportError:
        # Connect failures (and waiting for a pooled connection) happen before a byte
        # of the request is written: nothing can have executed.
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        what = f"{method} {path}: {type(exc).__name__}"
        if method == "POST" and not never_sent:
            return AmbiguousOutcome(f"{what}; sent, no reply: it may have been executed")
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(what)
        return NetworkError(what)

    @staticmethod
    def _status_detail(resp: httpx.Response) -> str:
        try:
            env = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return ""
        if type(env) is dict and type(env.get("retMsg")) is str:
            return f"retCode {env.get('retCode')}: {env['retMsg'][:200]}"
        return ""
