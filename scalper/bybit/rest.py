"""Bybit v5 REST client: typed endpoints over signed, paced, retried requests.

``BybitRest`` is the facade the app calls; it owns no connection: the caller injects an
``httpx.AsyncClient`` whose ``base_url`` points at Bybit (or the simulator), and a test
swaps in ``httpx.MockTransport``. The work is split by responsibility:

* ``transport.py`` (``Transport``): one signed attempt -- a GET's query string built
  once, a POST's JSON serialized once, signed with a fresh timestamp
  (``clock() + offset``) and sent as those exact bytes; the envelope parsed and mapped
  to the error tree, Bybit's text redacted. The one place network access happens.
* ``pacing.py`` (``Pacer``): a client-side sliding window on order
  create/amend/cancel/cancel-all/set-leverage (10/s each, Bybit's default), and a wait
  for the reset of any path whose last ``X-Bapi-Limit-Status`` says it is (nearly)
  exhausted.
* ``retry.py`` (``Retrier``, ``RetryPolicy``): everything but order create retries what
  ``errors`` marks retryable, with backoff and jitter, within ``max_attempts`` and one
  deadline; 10006 waits for its reset, 10002 re-syncs the clock (``sync_clock``).
  Cancel/amend/set-leverage are safe to repeat.
* ``orders.py`` (``OrderCreator``): an order create is never repeated blindly; an
  unknown outcome or a 110072 is resolved by reading the order by ``orderLinkId``, and
  once a create may have executed, ending unconfirmed is ``AmbiguousOutcome``.
* this module: the typed endpoints (query parameters in, core types out, via ``parse``),
  the clock offset, and the public re-exports.

Secrets: the key and secret live in ``Credentials`` (masked ``repr``); log lines and
errors carry the path, retCode and orderLinkId, never headers, key, secret or signature.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import httpx
import trio
from loguru import logger

from scalper.core.model import (
    ClosedPnl,
    Fill,
    Instrument,
    OrderIntent,
    OrderUpdate,
    PositionSnapshot,
    TickerStat,
    TriggerBy,
)

# Credentials and wall_clock_ms live in auth; re-exported here (see __all__) because
# scalper.app and scalper.replay import them from this module.
from .auth import Credentials, wall_clock_ms
from .errors import NotModified, ProtocolError
from .orders import OrderCreator, OrderRef, order_body
from .pacing import DEFAULT_PATH_LIMITS, Pacer, RateLimitState
from .parse import (
    BookMessage,
    ParseError,
    ParseStats,
    Ticker,
    WalletBalance,
    book_from_rest,
    closed_pnl_from_wire,
    fill_from_wire,
    instrument_from_wire,
    order_from_wire,
    position_from_wire,
    ticker_from_wire,
    wallet_from_wire,
)
from .paths import (
    CATEGORY,
    EXECUTION_LIST,
    MARKET_INSTRUMENTS,
    MARKET_ORDERBOOK,
    MARKET_TICKERS,
    MARKET_TIME,
    ORDER_AMEND,
    ORDER_CANCEL,
    ORDER_CANCEL_ALL,
    ORDER_HISTORY,
    ORDER_REALTIME,
    POSITION_CLOSED_PNL,
    POSITION_LIST,
    SET_LEVERAGE,
    TRADING_STOP,
    WALLET_BALANCE,
)
from .retry import Retrier, RetryPolicy
from .transport import Transport, dec_str, encode_json, need_id, parsed_row, result_list

__all__ = [
    "BybitRest",
    "Credentials",
    "OrderRef",
    "RateLimitState",
    "RetryPolicy",
    "wall_clock_ms",
]

_T = TypeVar("_T")

#: the default policy (frozen: one shared instance is safe)
DEFAULT_RETRY: Final = RetryPolicy()


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
        retry: RetryPolicy = DEFAULT_RETRY,
        path_limits: Mapping[str, int] = DEFAULT_PATH_LIMITS,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._creds = credentials
        self._clock = clock
        self.retry = retry
        rng = rng or random.Random()
        #: exchange time minus local clock, ms (from the last sync)
        self.clock_offset_ms = 0
        #: rows of list replies that could not be parsed (skipped)
        self.parse_stats = ParseStats(name="rest")
        #: order creates actually put on the wire (evidence for the idempotency tests)
        self.create_sends = 0
        # The parts read self.retry and self.now_ms() at each use (through these
        # callables), so a new policy or a re-synced clock applies at once.
        self._pacer = Pacer(path_limits, now_ms=self.now_ms, sleep=sleep)
        self._transport = Transport(
            client,
            credentials,
            recv_window_ms=recv_window_ms,
            now_ms=self.now_ms,
            track_limits=self._pacer.track,
        )
        self._retrier = Retrier(
            self._transport,
            self._pacer,
            policy=self._policy,
            now_ms=self.now_ms,
            sleep=sleep,
            rng=rng,
            resync=self._resync,
        )
        self._creator = OrderCreator(
            self._transport,
            self._retrier,
            policy=self._policy,
            sleep=sleep,
            rng=rng,
            read_order=self.order,
            on_send=self._count_create,
        )

    @property
    def rate_limits(self) -> dict[str, RateLimitState]:
        """Last rate-limit headers per path (kept by the pacer)."""
        return self._pacer.rate_limits

    @rate_limits.setter
    def rate_limits(self, value: dict[str, RateLimitState]) -> None:
        self._pacer.rate_limits = value

    def __repr__(self) -> str:
        return f"BybitRest(base_url={str(self._client.base_url)!r}, credentials={self._creds!r})"

    # ------------------------------------------------------------ time

    def now_ms(self) -> int:
        """Our best estimate of the exchange's clock, ms."""
        return int(self._clock()) + self.clock_offset_ms

    async def server_time_ms(self, *, deadline: float | None = None) -> int:
        """The exchange's time, ms (GET /v5/market/time). ``deadline``: as for ``order``."""
        result = await self._call("GET", MARKET_TIME, {}, signed=False, deadline=deadline)
        try:
            return int(result["timeNano"]) // 1_000_000
        except (KeyError, TypeError, ValueError):
            try:
                return int(result["timeSecond"]) * 1000
            except (KeyError, TypeError, ValueError) as exc:
                raise ProtocolError(f"{MARKET_TIME}: no usable timeNano/timeSecond") from exc

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
            MARKET_INSTRUMENTS, {"category": CATEGORY, "limit": 1000}, signed=False
        ):
            try:
                out.append(instrument_from_wire(row))
            except ParseError as exc:
                self.parse_stats.record(exc.kind, f"instrument {row.get('symbol')}: {exc}")
        return out

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        """Linear tickers (all symbols, or one). Bad rows are skipped and counted."""
        result = await self._call(
            "GET", MARKET_TICKERS, {"category": CATEGORY, "symbol": symbol}, signed=False
        )
        out: list[Ticker] = []
        for row in result_list(result, MARKET_TICKERS):
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
            MARKET_ORDERBOOK,
            {"category": CATEGORY, "symbol": symbol, "limit": limit},
            signed=False,
        )
        return parsed_row(book_from_rest, result, MARKET_ORDERBOOK)

    # ------------------------------------------------------------ account

    async def wallet_balance(self, coin: str | None = None) -> WalletBalance:
        """The unified account's balances."""
        path = WALLET_BALANCE
        result = await self._call("GET", path, {"accountType": "UNIFIED", "coin": coin})
        rows = result_list(result, path)
        if not rows:
            raise ProtocolError(f"{path}: empty list")
        return parsed_row(wallet_from_wire, rows[0], path)

    async def position(self, symbol: str) -> PositionSnapshot:
        """The (one-way) position on ``symbol``; flat when Bybit lists none."""
        path = POSITION_LIST
        result = await self._call("GET", path, {"category": CATEGORY, "symbol": symbol})
        snaps = [parsed_row(position_from_wire, row, path) for row in result_list(result, path)]
        open_ = [s for s in snaps if s.symbol == symbol and not s.is_flat]
        if len(open_) > 1:
            raise ProtocolError(f"{path}: {len(open_)} open positions on {symbol} (hedge mode?)")
        if open_:
            return open_[0]
        same = [s for s in snaps if s.symbol == symbol]
        return same[0] if same else PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))

    async def open_positions(self) -> list[PositionSnapshot]:
        """Every non-flat USDT-settled position, on every symbol (all pages of
        ``settleCoin=USDT``), with its armed stops and ``position_idx`` (1/2: hedge mode)."""
        path = POSITION_LIST
        rows = await self._paged(path, {"category": CATEGORY, "settleCoin": "USDT", "limit": 200})
        snaps = [parsed_row(position_from_wire, row, path) for row in rows]
        return [s for s in snaps if not s.is_flat]

    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None,
        take_profit: Decimal | None = None,
        trigger_by: TriggerBy = TriggerBy.MARK_PRICE,
        position_idx: int = 0,
    ) -> None:
        """Arm, move or remove the Full-mode stop-loss (and take-profit) of a position.

        ``POST /v5/position/trading-stop`` with ``tpslMode=Full`` and market stop orders.
        ``stop_loss=None`` sends ``"0"``, which removes the stop; ``take_profit=None``
        leaves the take-profit out of the request (unchanged). ``trigger_by`` applies to
        both. 34040 "not modified" (the same values again) is success. Bybit's refusals
        (10001: on the wrong side of the trigger price, a flat position, the position
        mode) raise ``InvalidRequest`` carrying Bybit's text. Safe to repeat, so retried
        like cancel and set-leverage.
        """
        if position_idx not in (0, 1, 2):
            raise ValueError(f"position_idx must be 0, 1 or 2, got {position_idx}")
        for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
            if value is not None and (type(value) is not Decimal or not value > 0):
                raise ValueError(f"{name} must be a positive Decimal, got {value!r}")
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "positionIdx": position_idx,
            "tpslMode": "Full",
            "stopLoss": "0" if stop_loss is None else dec_str(stop_loss),
            "slTriggerBy": trigger_by.value,
            "slOrderType": "Market",
        }
        if take_profit is not None:
            body["takeProfit"] = dec_str(take_profit)
            body["tpTriggerBy"] = trigger_by.value
            body["tpOrderType"] = "Market"
        try:
            await self._call("POST", TRADING_STOP, body)
        except NotModified:
            logger.bind(symbol=symbol, path=TRADING_STOP).debug(
                "trading-stop on {}: not modified (already set)", symbol
            )

    async def closed_pnl(
        self, *, start_ms: int, end_ms: int | None = None, symbol: str | None = None
    ) -> list[ClosedPnl]:
        """Closed-PnL records (one per closing order, net of fees) from ``start_ms``,
        newest first, every page (``cursor``). Bybit caps a window at 7 days; the
        caller asks for the UTC day. A malformed row is counted in ``parse_stats`` and
        skipped (one bad row must not hide the others from the loss limit's view)."""
        path = POSITION_CLOSED_PNL
        rows = await self._paged(
            path,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": 100,
            },
        )
        out: list[ClosedPnl] = []
        for row in rows:
            try:
                out.append(closed_pnl_from_wire(row))
            except ParseError as exc:
                self.parse_stats.record(exc.kind, f"{path} {row.get('orderId')}: {exc}")
        return out

    async def wallet_equity(self) -> Decimal:
        """Equity of the USDT coin (the account's USD ``totalEquity`` if no USDT row)."""
        wallet = await self.wallet_balance("USDT")
        usdt = wallet.coin("USDT")
        return usdt.equity if usdt is not None else wallet.total_equity

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set buy and sell leverage; "not modified" (110043) counts as success."""
        lev = dec_str(leverage)
        with contextlib.suppress(NotModified):
            await self._call(
                "POST",
                SET_LEVERAGE,
                {"category": CATEGORY, "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev},
            )

    # ------------------------------------------------------------ orders

    async def place_order(self, intent: OrderIntent) -> str:
        """Place ``intent`` exactly once; returns Bybit's orderId.

        Idempotent by ``intent.order_link_id`` (see ``orders.py``): whatever the
        faults, at most one order with this id exists, and if it exists its id is
        returned. Raises ``AmbiguousOutcome`` when the outcome could not be resolved
        within the retry bounds (the order may exist: reconcile) -- including a 110072
        whose order the read-back cannot see yet, and any failure after a create of
        this call may have executed -- or a final ``ExchangeError`` / 4xx
        ``HTTPStatusError`` when Bybit rejected it and nothing was executed.
        """
        return await self._creator.place(intent)

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
        need_id(order_link_id, order_id)
        result = await self._call(
            "POST",
            ORDER_AMEND,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "orderId": order_id,
                "orderLinkId": order_link_id,
                "qty": None if qty is None else dec_str(qty),
                "price": None if price is None else dec_str(price),
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
        need_id(order_link_id, order_id)
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
            for r in result_list(result, ORDER_CANCEL_ALL)
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
        need_id(order_link_id, order_id)
        params = {
            "category": CATEGORY,
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
        }
        for path in (ORDER_REALTIME, ORDER_HISTORY):
            result = await self._call("GET", path, params, deadline=deadline)
            for row in result_list(result, path):
                update = parsed_row(order_from_wire, row, path)
                if (order_link_id is None or update.order_link_id == order_link_id) and (
                    order_id is None or update.order_id == order_id
                ):
                    return update
        return None

    async def open_orders(self, symbol: str | None = None) -> list[OrderUpdate]:
        """Every working order on ``symbol``, or on every USDT contract (all pages).

        Plain orders only (``orderFilter=Order``): every order we place is one, and the
        conditional orders Bybit keeps for a position's Full-mode stops (orderLinkId "")
        are the exchange's protection, not orders to reconcile or cancel."""
        where = {"symbol": symbol} if symbol else {"settleCoin": "USDT"}
        rows = await self._paged(
            ORDER_REALTIME,
            {"category": CATEGORY, **where, "openOnly": 0, "orderFilter": "Order", "limit": 50},
        )
        return [parsed_row(order_from_wire, row, ORDER_REALTIME) for row in rows]

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
            parsed_row(order_from_wire, row, ORDER_HISTORY)
            for row in result_list(result, ORDER_HISTORY)
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
        path = EXECUTION_LIST
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
        for row in result_list(result, path):
            fill = parsed_row(fill_from_wire, row, path)
            if fill is not None:
                fills.append(fill)
        return fills

    # ------------------------------------------------------------ plumbing

    #: the create body and its exact JSON bytes (kept here for the wire-format tests)
    _order_body = staticmethod(order_body)
    _json = staticmethod(encode_json)

    async def _paged(
        self, path: str, params: Mapping[str, Any], *, signed: bool = True, max_pages: int = 50
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(max_pages):
            result = await self._call("GET", path, {**params, "cursor": cursor}, signed=signed)
            rows.extend(result_list(result, path))
            nxt = result.get("nextPageCursor")
            if not nxt or type(nxt) is not str or nxt == cursor:
                return rows
            cursor = nxt
        raise ProtocolError(f"{path}: more than {max_pages} pages")

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        signed: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried for retryable failures (``Retrier.call``); never
        for order create."""
        return await self._retrier.call(method, path, params, signed=signed, deadline=deadline)

    def _policy(self) -> RetryPolicy:
        """The current policy: ``retry`` is a public attribute a caller may replace."""
        return self.retry

    async def _resync(self, deadline: float) -> None:
        """Re-measure the clock offset after a 10002, within the failing call's deadline."""
        await self.sync_clock(deadline=deadline)

    def _count_create(self) -> None:
        """Count one order create put on the wire (``create_sends``)."""
        self.create_sends += 1
