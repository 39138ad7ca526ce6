"""BybitRest against the simulated exchange over loopback: reads, orders and REST faults.

Real sockets and the sim's wall clock, so no MockClock here; every wait is bounded
with ``trio.fail_after`` and the retry policy is shortened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from loguru import logger

from scalper.bybit.errors import AuthError, InsufficientBalance, OrderAlreadyFinal, OrderNotFound
from scalper.bybit.rest import BybitRest, Credentials, RetryPolicy, wall_clock_ms
from scalper.core.model import OrderIntent, OrderStatus, OrderType, Side, TimeInForce
from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import post

KEY, SECRET = "sim-key", "sim-secret"
FAST = RetryPolicy(
    max_attempts=6, base_delay_s=0.05, max_delay_s=0.5, total_budget_s=20, settle_delay_s=0.2
)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim(SimConfig(seed=1, port=0)) as sim:
        yield sim


class Recorder:
    """httpx response hook: remembers the order-create replies' status and headers."""

    def __init__(self) -> None:
        self.creates: list[tuple[int, int, dict[str, str]]] = []

    async def __call__(self, response: httpx.Response) -> None:
        if response.request.url.path == "/v5/order/create":
            await response.aread()
            code = response.json().get("retCode", -1) if response.status_code == 200 else -1
            self.creates.append((response.status_code, code, dict(response.headers)))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def rest(sim: Sim, recorder: Recorder) -> AsyncIterator[BybitRest]:
    async with httpx.AsyncClient(
        base_url=sim.rest_url, timeout=httpx.Timeout(1.5), event_hooks={"response": [recorder]}
    ) as client:
        rest = BybitRest(client, Credentials(KEY, SECRET), retry=FAST)
        with trio.fail_after(10):
            await rest.sync_clock()
        yield rest


def limit_buy(rest_bid: float, link: str, qty: str = "0.001") -> OrderIntent:
    """A PostOnly buy 5 % under the bid: it rests, never fills."""
    price = (Decimal(str(rest_bid)) * Decimal("0.95")).quantize(Decimal("0.1"))
    return OrderIntent(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal(qty),
        price=price,
        time_in_force=TimeInForce.POST_ONLY,
        order_link_id=link,
    )


async def bid(rest: BybitRest) -> float:
    book = await rest.orderbook("BTCUSDT", 1)
    return float(book.bids[0][0])


def orders_with(sim: Sim, link: str) -> list[dict[str, Any]]:
    state = sim.state()
    seen = {o["orderId"]: o for o in state["open_orders"] + state["order_history"]}
    return [o for o in seen.values() if o["orderLinkId"] == link]


async def test_reads(rest: BybitRest) -> None:
    with trio.fail_after(20):
        instruments = await rest.instruments()
        by_symbol = {i.symbol: i for i in instruments}
        assert by_symbol["BTCUSDT"].tick_size == Decimal("0.10")
        stats = await rest.ticker_stats()
        assert {s.symbol for s in stats} == set(by_symbol)
        book = await rest.orderbook("BTCUSDT", 50)
        assert book.bids and book.asks and float(book.bids[0][0]) < float(book.asks[0][0])
        wallet = await rest.wallet_balance()
        assert wallet.total_equity > 0
        assert await rest.wallet_equity() > 0
        pos = await rest.position("BTCUSDT")
        assert pos.is_flat
        assert await rest.open_positions() == []
        assert await rest.open_orders() == []
        await rest.set_leverage("BTCUSDT", Decimal("5"))
        await rest.set_leverage("BTCUSDT", Decimal("5"))  # 110043 is success
        assert abs(rest.clock_offset_ms) < 1000


async def test_place_read_cancel(rest: BybitRest, sim: Sim) -> None:
    with trio.fail_after(20):
        intent = limit_buy(await bid(rest), "t-place-1")
        order_id = await rest.place_order(intent)
        update = await rest.order("BTCUSDT", "t-place-1")
        assert update is not None and update.order_id == order_id
        assert update.status is OrderStatus.NEW and update.price == intent.price
        assert [o.order_link_id for o in await rest.open_orders("BTCUSDT")] == ["t-place-1"]
        await rest.cancel_order("BTCUSDT", "t-place-1")
        final = await rest.order("BTCUSDT", "t-place-1")
        assert final is not None and final.status is OrderStatus.CANCELLED
        with pytest.raises((OrderAlreadyFinal, OrderNotFound)):
            await rest.cancel_order("BTCUSDT", "t-place-1")
        assert await rest.order("BTCUSDT", "never-placed") is None
        big = OrderIntent(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=Decimal("400"),
            order_link_id="t-too-big",
        )
        with pytest.raises(InsufficientBalance):
            await rest.place_order(big)
        assert len(orders_with(sim, "t-too-big")) <= 1  # rejected, never sent twice


async def test_timeout_on_create_leaves_exactly_one_order(rest: BybitRest, sim: Sim) -> None:
    intent = limit_buy(await bid(rest), "t-timeout-1")
    sim.inject({"kind": "timeout", "count": 1, "path": "/v5/order/create"})
    with trio.fail_after(30):
        order_id = await rest.place_order(intent)
    async with httpx.AsyncClient(base_url=sim.rest_url) as control:
        state = (await control.get("/sim/state")).json()
    rows = {
        o["orderId"]: o
        for o in state["open_orders"] + state["order_history"]
        if o["orderLinkId"] == "t-timeout-1"
    }
    assert list(rows) == [order_id]  # exactly one order, and the client reports it
    assert rest.create_sends == 1  # resolved by reading, never resent


async def test_rate_limited_create_placed_once_after_reset(
    rest: BybitRest, sim: Sim, recorder: Recorder
) -> None:
    intent = limit_buy(await bid(rest), "t-10006-1")
    sim.inject(
        {"kind": "ret_code", "path": "/v5/order/create", "code": 10006, "count": 3, "reset_ms": 300}
    )
    with trio.fail_after(30):
        order_id = await rest.place_order(intent)
    codes = [code for _status, code, _h in recorder.creates]
    assert codes == [10006, 10006, 10006, 0]
    resets = [int(h["x-bapi-limit-reset-timestamp"]) for _s, c, h in recorder.creates if c == 10006]
    rows = orders_with(sim, "t-10006-1")
    assert len(rows) == 1 and rows[0]["orderId"] == order_id
    assert int(rows[0]["createdTime"]) >= max(resets)  # placed only after the reset time


async def test_timestamp_error_resyncs_the_clock(sim: Sim) -> None:
    skew = 30_000  # our clock runs 30 s fast: every signed request is outside recv_window
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=2) as client:
        rest = BybitRest(
            client, Credentials(KEY, SECRET), retry=FAST, clock=lambda: wall_clock_ms() + skew
        )
        with trio.fail_after(20):
            wallet = await rest.wallet_balance()
            assert wallet.total_equity > 0
            assert -skew - 1000 < rest.clock_offset_ms < -skew + 1000
            sim.inject(
                {
                    "kind": "ret_code",
                    "path": "/v5/account/wallet-balance",
                    "code": 10002,
                    "count": 1,
                }
            )
            assert (await rest.wallet_balance()).total_equity > 0


async def test_5xx_bursts_are_survived_without_duplicates(rest: BybitRest, sim: Sim) -> None:
    with trio.fail_after(30):
        sim.inject({"kind": "http_status", "status": 503, "count": 3, "path": "/v5/order/realtime"})
        assert await rest.order("BTCUSDT", "nothing") is None
        intent = limit_buy(await bid(rest), "t-5xx-1")
        sim.inject({"kind": "http_status", "status": 502, "count": 2, "path": "/v5/order/create"})
        order_id = await rest.place_order(intent)
    rows = orders_with(sim, "t-5xx-1")
    assert len(rows) == 1 and rows[0]["orderId"] == order_id


async def test_every_create_fault_at_once_still_one_order(rest: BybitRest, sim: Sim) -> None:
    intent = limit_buy(await bid(rest), "t-mixed-1")
    for fault in (
        {"kind": "ret_code", "path": "/v5/order/create", "code": 10016, "count": 1},
        {"kind": "http_status", "status": 503, "count": 1, "path": "/v5/order/create"},
        {"kind": "timeout", "count": 1, "path": "/v5/order/create"},
    ):
        sim.inject(fault)
    with trio.fail_after(40):
        order_id = await rest.place_order(intent)
    rows = orders_with(sim, "t-mixed-1")
    assert len(rows) == 1 and rows[0]["orderId"] == order_id


async def test_no_secret_in_logs_or_errors_against_sim(sim: Sim) -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{message} {extra}")
    signatures: list[str] = []

    async def grab(request: httpx.Request) -> None:
        if "X-BAPI-SIGN" in request.headers:
            signatures.append(request.headers["X-BAPI-SIGN"])

    try:
        async with httpx.AsyncClient(
            base_url=sim.rest_url, timeout=1.5, event_hooks={"request": [grab]}
        ) as client:
            rest = BybitRest(
                client, Credentials(KEY, SECRET), retry=FAST, clock=lambda: wall_clock_ms() + 20_000
            )
            with trio.fail_after(30):
                intent = limit_buy(await bid(rest), "t-secret-1")
                sim.inject({"kind": "timeout", "count": 1, "path": "/v5/order/create"})
                await rest.place_order(intent)
                bad = BybitRest(client, Credentials(KEY, "wrong-secret"), retry=FAST)
                with pytest.raises(AuthError) as info:
                    await bad.wallet_balance()
                lines.append(f"{info.value!s} {info.value!r}")
    finally:
        logger.remove(sink)
    text = "\n".join(lines)
    assert "10004" in text or "sign" in text.lower()
    assert signatures
    for secret in [KEY, SECRET, "wrong-secret", *signatures]:
        assert secret not in text


async def test_amend_cancel_all_history_and_executions(rest: BybitRest, sim: Sim) -> None:
    with trio.fail_after(30):
        b = await bid(rest)
        first = limit_buy(b, "t-amend-1")
        second = limit_buy(b, "t-amend-2")
        await rest.place_order(first)
        await rest.place_order(second)
        assert first.price is not None
        new_price = first.price - Decimal("1.0")
        order_id = await rest.amend_order("BTCUSDT", order_link_id="t-amend-1", price=new_price)
        amended = await rest.order("BTCUSDT", "t-amend-1")
        assert amended is not None and amended.order_id == order_id
        assert amended.price == new_price
        cancelled = await rest.cancel_all("BTCUSDT")
        assert {c.order_link_id for c in cancelled} == {"t-amend-1", "t-amend-2"}
        assert await rest.open_orders("BTCUSDT") == []
        history = await rest.order_history("BTCUSDT")
        assert {"t-amend-1", "t-amend-2"} <= {o.order_link_id for o in history}

        buy = OrderIntent(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=Decimal("0.003"),
            order_link_id="t-exec-1",
        )
        buy_id = await rest.place_order(buy)
        fills = await rest.executions("BTCUSDT", order_link_id="t-exec-1")
        assert fills and all(f.order_id == buy_id for f in fills)
        assert sum(f.qty for f in fills) == Decimal("0.003")
        pos = await rest.position("BTCUSDT")
        assert pos.side is Side.BUY and pos.size == Decimal("0.003") and pos.avg_price > 0
        assert [p.symbol for p in await rest.open_positions()] == ["BTCUSDT"]
        close = OrderIntent(
            symbol="BTCUSDT",
            side=Side.SELL,
            order_type=OrderType.MARKET,
            qty=Decimal("0.003"),
            reduce_only=True,
            order_link_id="t-exec-close",
        )
        await rest.place_order(close)
        assert (await rest.position("BTCUSDT")).is_flat


# ---------------------------------------------------------------- issue 9: stops, closed PnL


def _market(symbol: str, side: Side, qty: str, link: str, **kw: Any) -> OrderIntent:
    return OrderIntent(
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        qty=Decimal(qty),
        order_link_id=link,
        **kw,
    )


def _mark(sim: Sim, symbol: str) -> Decimal:
    return sim.exchange.mark(symbol)


async def test_stop_on_create_trading_stop_and_closed_pnl_against_the_sim(
    rest: BybitRest, sim: Sim
) -> None:
    from scalper.bybit.errors import InvalidRequest
    from scalper.core.model import TriggerBy

    sim.exchange.paused = True
    tick = sim.exchange.specs["ETHUSDT"].tick_size
    mark = _mark(sim, "ETHUSDT")
    stop = (mark * Decimal("0.98") / tick).quantize(Decimal(1)) * tick
    with trio.fail_after(15):
        with pytest.raises(InvalidRequest, match="zero position"):
            await rest.set_trading_stop("ETHUSDT", stop_loss=stop)
        await rest.place_order(_market("ETHUSDT", Side.BUY, "0.30", "cl-stop-1", stop_loss=stop))
        pos = await rest.position("ETHUSDT")
        assert (pos.side, pos.size, pos.stop_loss, pos.position_idx) == (
            Side.BUY,
            Decimal("0.30"),
            stop,
            0,
        )
        # the same stop again is 34040 on the exchange: success here
        await rest.set_trading_stop("ETHUSDT", stop_loss=stop, trigger_by=TriggerBy.MARK_PRICE)
        moved = stop - 10 * tick
        await rest.set_trading_stop("ETHUSDT", stop_loss=moved)
        (listed,) = await rest.open_positions()
        assert (listed.symbol, listed.stop_loss, listed.take_profit) == ("ETHUSDT", moved, None)
        with pytest.raises(InvalidRequest, match="should lower than base_price"):
            await rest.set_trading_stop("ETHUSDT", stop_loss=mark * 2)
        # the exchange's stop closes it: a closed-pnl row of an order that is not ours
        start = rest.now_ms() - 1000
        sim.inject({"kind": "price_jump", "symbol": "ETHUSDT", "pct": -4})
        assert (await rest.position("ETHUSDT")).is_flat
        assert await rest.open_positions() == []
        history = await rest.order_history("ETHUSDT")
        close = history[0]
        assert (close.order_link_id, close.stop_order_type, close.create_type) == (
            "",
            "StopLoss",
            "CreateByStopLoss",
        )
        assert close.status is OrderStatus.FILLED and close.cum_fee > 0
        rows = await rest.closed_pnl(start_ms=start, symbol="ETHUSDT")
    assert [r.order_id for r in rows] == [close.order_id]
    row = rows[0]
    assert (row.side, row.closed_size, row.exec_type) == (Side.SELL, Decimal("0.30"), "Trade")
    entry = next(o for o in history if o.order_link_id == "cl-stop-1")
    assert entry.avg_price is not None and close.avg_price is not None
    gross = (close.avg_price - entry.avg_price) * Decimal("0.30")
    assert abs(row.closed_pnl - (gross - entry.cum_fee - close.cum_fee)) < Decimal("0.0000001")


async def test_closed_pnl_pages_against_the_sim(rest: BybitRest, sim: Sim) -> None:
    sim.exchange.paused = True
    start = rest.now_ms() - 1000
    with trio.fail_after(20):
        for i in range(3):
            await rest.place_order(_market("SOLUSDT", Side.SELL, "2.0", f"cp-{i}-o"))
            await rest.place_order(
                _market("SOLUSDT", Side.BUY, "2.0", f"cp-{i}-c", reduce_only=True)
            )
        rest_rows = await rest.closed_pnl(start_ms=start)
        history = await rest.order_history("SOLUSDT")
    closes = [o.order_id for o in history if o.order_link_id.endswith("-c")]
    assert [r.order_id for r in rest_rows] == closes  # newest first, all pages
    assert all(r.side is Side.BUY and r.closed_size == Decimal("2.0") for r in rest_rows)


async def test_open_positions_reads_every_symbol_and_the_hedge_index() -> None:
    async with (
        open_sim(SimConfig(seed=3, hedge_mode=True)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=httpx.Timeout(2)) as client,
    ):
        rest = BybitRest(client, Credentials(KEY, SECRET), retry=FAST)
        with trio.fail_after(10):
            await rest.sync_clock()
            body = {
                "category": "linear",
                "symbol": "ETHUSDT",
                "side": "Sell",
                "orderType": "Market",
                "qty": "0.20",
                "positionIdx": 2,
                "orderLinkId": "hedge-short",
            }
            # placed with a raw signed request: our client only sends one-way orders
            assert (await post(client, "/v5/order/create", body)).json()["retCode"] == 0
            positions = await rest.open_positions()
    assert [(p.symbol, p.side, p.position_idx) for p in positions] == [("ETHUSDT", Side.SELL, 2)]
