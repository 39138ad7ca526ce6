"""Protective stops, closed PnL and hedge mode on the simulator, over raw REST and WS.

Bybit's Full-mode protective stops: a stopLoss/takeProfit on the entry or through
``/v5/position/trading-stop``, validated against the trigger base price (mark or last),
fired by the market into a reduce-only market close that is not ours (orderLinkId ""),
with ``stopOrderType``/``createType`` on every row and push; ``/v5/position/closed-pnl``
one row per closing order, net of both fees. The market is paused in every test, so the
prices only move when a test moves them (``price_jump``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from scalper.sim import Sim, SimConfig, open_sim

from .sim_helpers import get, post, private_auth, recv, send

SYMBOL = "ETHUSDT"
QTY = "0.50"


@pytest.fixture
async def venue() -> AsyncIterator[tuple[Sim, httpx.AsyncClient]]:
    async with (
        open_sim(SimConfig(seed=21)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        sim.exchange.paused = True
        yield sim, http


def _prices(sim: Sim, symbol: str = SYMBOL) -> tuple[Decimal, Decimal]:
    """(last, mark) now."""
    sm = sim.exchange.sm(symbol)
    return sm.spec.price_of(sm.last_tick), sm.spec.price_of(sm.mark_tick)


def _px(sim: Sim, value: Decimal, symbol: str = SYMBOL) -> str:
    """``value`` rounded to the symbol's tick, as a string."""
    tick = sim.exchange.specs[symbol].tick_size
    return str((value / tick).quantize(Decimal(1)) * tick)


async def _market(
    http: httpx.AsyncClient, side: str, link: str, qty: str = QTY, **extra: Any
) -> dict[str, Any]:
    body = {
        "category": "linear",
        "symbol": SYMBOL,
        "side": side,
        "orderType": "Market",
        "qty": qty,
        "orderLinkId": link,
        **extra,
    }
    return (await post(http, "/v5/order/create", body)).json()


async def _position(http: httpx.AsyncClient, symbol: str = SYMBOL) -> dict[str, Any]:
    reply = (await get(http, "/v5/position/list", {"category": "linear", "symbol": symbol})).json()
    assert reply["retCode"] == 0, reply
    rows: list[dict[str, Any]] = reply["result"]["list"]
    assert len(rows) == 1
    return rows[0]


async def _trading_stop(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"category": "linear", "symbol": SYMBOL, "positionIdx": 0, "tpslMode": "Full"}
    body.update(fields)
    return (await post(http, "/v5/position/trading-stop", body)).json()


async def _closed_pnl(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    reply = (await get(http, "/v5/position/closed-pnl", {"category": "linear", **params})).json()
    assert reply["retCode"] == 0, reply
    return reply["result"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- on the entry


async def test_stop_loss_on_create_is_armed_on_the_position(
    venue: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = venue
    _, mark = _prices(sim)
    stop = _px(sim, mark * Decimal("0.98"))
    reply = await _market(
        http, "Buy", "sl-entry-1", stopLoss=stop, slTriggerBy="MarkPrice", tpslMode="Full",
        slOrderType="Market",
    )  # fmt: skip
    assert reply["retCode"] == 0, reply
    position = await _position(http)
    assert (position["side"], position["size"], position["stopLoss"]) == ("Buy", QTY, stop)
    assert position["takeProfit"] == "0"
    history = (
        await get(http, "/v5/order/history", {"category": "linear", "orderLinkId": "sl-entry-1"})
    ).json()["result"]["list"][0]
    assert (history["stopLoss"], history["slTriggerBy"], history["tpslMode"]) == (
        stop,
        "MarkPrice",
        "Full",
    )
    assert history["createType"] == "CreateByUser"
    # a Full-mode stop is not an open order
    live = (await get(http, "/v5/order/realtime", {"category": "linear", "symbol": SYMBOL})).json()
    assert live["result"]["list"] == []
    assert sim.state()["positions"][0]["stopLoss"] == stop


@pytest.mark.parametrize(
    ("side", "field", "factor", "word"),
    [
        ("Buy", "stopLoss", "1.01", "lower"),
        ("Buy", "takeProfit", "0.99", "higher"),
        ("Sell", "stopLoss", "0.99", "higher"),
        ("Sell", "takeProfit", "1.01", "lower"),
    ],
)
async def test_stop_on_the_wrong_side_of_the_base_price_is_10001(
    venue: tuple[Sim, httpx.AsyncClient], side: str, field: str, factor: str, word: str
) -> None:
    sim, http = venue
    last, _ = _prices(sim)
    reply = await _market(http, side, "wrong-1", **{field: _px(sim, last * Decimal(factor))})
    assert reply["retCode"] == 10001
    name = "StopLoss" if field == "stopLoss" else "TakeProfit"
    assert reply["retMsg"].startswith(f"{name}:")
    assert f"set for {side} position should {word} than base_price:" in reply["retMsg"]
    assert reply["retMsg"].endswith("??LastPrice")  # Bybit's default trigger
    assert (await _position(http))["size"] == "0"  # nothing was placed


async def test_reduce_only_with_a_stop_is_refused(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = venue
    assert (await _market(http, "Buy", "ro-open"))["retCode"] == 0
    last, _ = _prices(sim)
    reply = await _market(
        http, "Sell", "ro-close", reduceOnly=True, stopLoss=_px(sim, last * Decimal("1.02"))
    )
    assert reply["retCode"] == 10001
    assert "reduce-only" in reply["retMsg"]
    assert (await _position(http))["size"] == QTY


# ---------------------------------------------------------------- trading-stop


@pytest.mark.parametrize("side", ["Buy", "Sell"])
async def test_trading_stop_set_same_replace_wrong_side_remove(
    venue: tuple[Sim, httpx.AsyncClient], side: str
) -> None:
    sim, http = venue
    _, mark = _prices(sim)
    sign = Decimal(1) if side == "Buy" else Decimal(-1)
    zero = await _trading_stop(http, stopLoss=_px(sim, mark * (1 - sign * Decimal("0.02"))))
    assert (zero["retCode"], zero["retMsg"]) == (10001, "can not set tp/sl/ts for zero position")

    assert (await _market(http, side, "ts-open"))["retCode"] == 0
    first = _px(sim, mark * (1 - sign * Decimal("0.02")))
    ok = await _trading_stop(http, stopLoss=first, slTriggerBy="MarkPrice", slOrderType="Market")
    assert (ok["retCode"], ok["result"]) == (0, {})
    assert (await _position(http))["stopLoss"] == first

    again = await _trading_stop(http, stopLoss=first, slTriggerBy="MarkPrice")
    assert (again["retCode"], again["retMsg"]) == (34040, "not modified")

    second = _px(sim, mark * (1 - sign * Decimal("0.03")))
    tp = _px(sim, mark * (1 + sign * Decimal("0.03")))
    moved = await _trading_stop(
        http, stopLoss=second, takeProfit=tp, slTriggerBy="MarkPrice", tpTriggerBy="MarkPrice"
    )
    assert moved["retCode"] == 0
    row = await _position(http)
    assert (row["stopLoss"], row["takeProfit"]) == (second, tp)

    wrong = await _trading_stop(
        http, stopLoss=_px(sim, mark * (1 + sign * Decimal("0.01"))), slTriggerBy="MarkPrice"
    )
    assert wrong["retCode"] == 10001
    word = "lower" if side == "Buy" else "higher"
    assert f"set for {side} position should {word} than base_price:" in wrong["retMsg"]
    assert wrong["retMsg"].endswith("??MarkPrice")
    base = int(wrong["retMsg"].split("base_price:")[1].split("??")[0])
    assert Decimal(base).scaleb(-8) == mark  # the base price named is the mark
    assert (await _position(http))["stopLoss"] == second  # a refusal changes nothing

    removed = await _trading_stop(http, stopLoss="0", takeProfit="0")
    assert removed["retCode"] == 0
    row = await _position(http)
    assert (row["stopLoss"], row["takeProfit"]) == ("0", "0")


async def test_trading_stop_needs_position_idx(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    _, http = venue
    body = {"category": "linear", "symbol": SYMBOL, "stopLoss": "1000.00"}
    reply = (await post(http, "/v5/position/trading-stop", body)).json()
    assert reply["retCode"] == 10001 and "positionIdx" in reply["retMsg"]


# ---------------------------------------------------------------- triggering


async def _private(sim: Sim) -> Any:
    ws = open_websocket_url(sim.ws_private_url)
    conn: WebSocketConnection = await ws.__aenter__()
    assert (await private_auth(conn))["success"] is True
    await send(conn, {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
    assert (await recv(conn))["success"] is True
    return ws, conn


async def _collect(conn: WebSocketConnection, wanted: int, limit_s: float = 5.0) -> list[Any]:
    """Pushes until ``wanted`` wallet pushes (one per change) have arrived."""
    out: list[Any] = []
    wallets = 0
    with trio.fail_after(limit_s):
        while wallets < wanted:
            msg = await recv(conn)
            out.append(msg)
            wallets += msg.get("topic") == "wallet"
    return out


async def test_price_jump_through_the_stop_closes_the_position_like_bybit(
    venue: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = venue
    ws, conn = await _private(sim)
    try:
        _, mark = _prices(sim)
        stop = _px(sim, mark * Decimal("0.99"))
        entry = await _market(http, "Buy", "jump-open", stopLoss=stop, slTriggerBy="MarkPrice")
        assert entry["retCode"] == 0
        await _collect(conn, 1)  # the entry's pushes
        sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -3})
        pushes = await _collect(conn, 1)
    finally:
        await ws.__aexit__(None, None, None)
    topics = [m["topic"] for m in pushes]
    assert topics[:3] == ["order", "execution", "execution.fast"] or topics[:2] == [
        "order",
        "execution",
    ]
    order = next(m for m in pushes if m["topic"] == "order")["data"][-1]
    assert order["orderLinkId"] == ""
    assert (order["stopOrderType"], order["createType"]) == ("StopLoss", "CreateByStopLoss")
    assert (order["reduceOnly"], order["closeOnTrigger"]) == (True, True)
    assert (order["side"], order["orderType"], order["orderStatus"]) == ("Sell", "Market", "Filled")
    assert order["qty"] == QTY and order["triggerPrice"] == stop
    executions = next(m for m in pushes if m["topic"] == "execution")["data"]
    assert {(e["stopOrderType"], e["createType"], e["orderLinkId"]) for e in executions} == {
        ("StopLoss", "CreateByStopLoss", "")
    }
    position = next(m for m in pushes if m["topic"] == "position")["data"][0]
    assert (position["size"], position["side"], position["stopLoss"]) == ("0", "", "0")

    # REST rows say the same
    assert (await _position(http))["size"] == "0"
    history = (
        await get(http, "/v5/order/history", {"category": "linear", "symbol": SYMBOL})
    ).json()["result"]["list"]
    close = history[0]
    assert (close["orderId"], close["stopOrderType"], close["createType"]) == (
        order["orderId"],
        "StopLoss",
        "CreateByStopLoss",
    )
    assert close["orderLinkId"] == "" and close["reduceOnly"] is True
    fills = (
        await get(http, "/v5/execution/list", {"category": "linear", "symbol": SYMBOL})
    ).json()["result"]["list"]
    close_fills = [f for f in fills if f["orderId"] == order["orderId"]]
    open_fills = [f for f in fills if f["orderLinkId"] == "jump-open"]
    assert close_fills and open_fills
    assert all(f["stopOrderType"] == "StopLoss" for f in close_fills)

    # closed PnL: one row for the stop's close, net of both fees, by hand from the fills
    def value(rows: list[dict[str, Any]]) -> Decimal:
        return sum((Decimal(f["execPrice"]) * Decimal(f["execQty"]) for f in rows), Decimal(0))

    def fees(rows: list[dict[str, Any]]) -> Decimal:
        return sum((Decimal(f["execFee"]) for f in rows), Decimal(0))

    expected = value(close_fills) - value(open_fills) - fees(open_fills) - fees(close_fills)
    rows = (await _closed_pnl(http, symbol=SYMBOL))["list"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["orderId"], row["side"], row["closedSize"], row["execType"]) == (
        order["orderId"],
        "Sell",
        QTY,
        "Trade",
    )
    assert abs(Decimal(row["closedPnl"]) - expected) <= Decimal("0.00000002")
    assert Decimal(row["closedPnl"]) < 0  # a stop-loss of a long after a fall
    assert Decimal(row["avgEntryPrice"]) == value(open_fills) / Decimal(QTY)
    assert Decimal(row["avgExitPrice"]) == value(close_fills) / Decimal(QTY)


async def test_take_profit_fires_for_a_short(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = venue
    last, _ = _prices(sim)
    tp = _px(sim, last * Decimal("0.99"))
    assert (await _market(http, "Sell", "tp-open", takeProfit=tp))["retCode"] == 0
    assert (await _position(http))["takeProfit"] == tp
    sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -3})
    assert (await _position(http))["size"] == "0"
    close = (await get(http, "/v5/order/history", {"category": "linear", "symbol": SYMBOL})).json()[
        "result"
    ]["list"][0]
    assert (close["side"], close["stopOrderType"], close["createType"]) == (
        "Buy",
        "TakeProfit",
        "CreateByTakeProfit",
    )
    rows = (await _closed_pnl(http))["list"]
    assert len(rows) == 1 and Decimal(rows[0]["closedPnl"]) > 0


@pytest.mark.parametrize(("trigger", "fires"), [("LastPrice", True), ("MarkPrice", False)])
async def test_a_wick_fires_a_last_price_stop_but_not_a_mark_price_stop(
    venue: tuple[Sim, httpx.AsyncClient], trigger: str, fires: bool
) -> None:
    sim, http = venue
    last, mark = _prices(sim)
    stop = _px(sim, min(last, mark) * Decimal("0.99"))
    assert (await _market(http, "Buy", "wick-open", stopLoss=stop, slTriggerBy=trigger))[
        "retCode"
    ] == 0
    sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -3, "wick": True})
    last_after, mark_after = _prices(sim)
    assert last_after < Decimal(stop) < mark_after  # the wick crossed last, not mark
    row = await _position(http)
    if fires:
        assert (row["size"], row["stopLoss"]) == ("0", "0")
    else:
        assert (row["size"], row["stopLoss"]) == (QTY, stop)


async def test_mark_price_follows_a_jump_and_shows_in_tickers_and_positions(
    venue: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = venue
    _, mark = _prices(sim)
    sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": 5})
    _, moved = _prices(sim)
    assert moved > mark * Decimal("1.04")
    ticker = (
        await get(http, "/v5/market/tickers", {"category": "linear", "symbol": SYMBOL})
    ).json()["result"]["list"][0]
    assert Decimal(ticker["markPrice"]) == moved
    assert (await _market(http, "Buy", "mark-open"))["retCode"] == 0
    assert Decimal((await _position(http))["markPrice"]) == moved


async def test_any_close_cancels_the_full_mode_stop(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = venue
    last, _ = _prices(sim)
    stop = _px(sim, last * Decimal("0.99"))
    assert (await _market(http, "Buy", "cx-open", stopLoss=stop))["retCode"] == 0
    assert (await _market(http, "Sell", "cx-close", reduceOnly=True))["retCode"] == 0
    assert (await _position(http))["stopLoss"] == "0"
    # a new position does not inherit the old stop, and the fall fires nothing
    assert (await _market(http, "Buy", "cx-again"))["retCode"] == 0
    assert (await _position(http))["stopLoss"] == "0"
    sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -3})
    assert (await _position(http))["size"] == QTY
    history = (
        await get(http, "/v5/order/history", {"category": "linear", "symbol": SYMBOL})
    ).json()["result"]["list"]
    assert [o["orderLinkId"] for o in history] == ["cx-again", "cx-close", "cx-open"]

    # an outside close (the close_position fault) clears an armed stop too
    mark = _prices(sim)[1]
    assert (await _trading_stop(http, stopLoss=_px(sim, mark * Decimal("0.98"))))["retCode"] == 0
    sim.inject({"kind": "close_position", "symbol": SYMBOL})
    assert (await _position(http))["stopLoss"] == "0"
    assert len((await _closed_pnl(http))["list"]) == 2  # our close, the outside close


# ---------------------------------------------------------------- closed-pnl


async def test_closed_pnl_rows_are_newest_first_paged_and_windowed(
    venue: tuple[Sim, httpx.AsyncClient],
) -> None:
    _, http = venue
    closes = []
    for i in range(3):
        assert (await _market(http, "Buy", f"cp-open-{i}"))["retCode"] == 0
        reply = await _market(http, "Sell", f"cp-close-{i}", reduceOnly=True)
        assert reply["retCode"] == 0
        closes.append(reply["result"]["orderId"])
        await trio.sleep(0.005)  # distinct update times
    # a partial close, then the rest: two closing orders, two rows
    assert (await _market(http, "Sell", "cp-short", qty="1.00"))["retCode"] == 0
    assert (await _market(http, "Buy", "cp-part", qty="0.40", reduceOnly=True))["retCode"] == 0
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = await _closed_pnl(http, **params)
        seen.extend(r["orderId"] for r in page["list"])
        cursor = page["nextPageCursor"]
        if not cursor:
            break
    all_rows = (await _closed_pnl(http, limit=100))["list"]
    assert seen == [r["orderId"] for r in all_rows]
    assert len(seen) == 4 and seen[1:] == closes[::-1]
    part = all_rows[0]
    assert (part["side"], part["closedSize"], part["qty"]) == ("Buy", "0.40", "0.40")
    created = [int(r["createdTime"]) for r in all_rows]
    assert created == sorted(created, reverse=True)
    later = (await _closed_pnl(http, startTime=created[1] + 1, endTime=created[0] + 1))["list"]
    assert [r["orderId"] for r in later] == [seen[0]]
    # each round trip's net = the price PnL minus both fees (Bybit's closedPnl)
    query = {"category": "linear", "symbol": SYMBOL, "limit": 100}
    fills = (await get(http, "/v5/execution/list", query)).json()["result"]["list"]
    by_link: dict[str, list[dict[str, Any]]] = {}
    for f in fills:
        by_link.setdefault(f["orderLinkId"], []).append(f)
    for i, order_id in enumerate(closes):
        o, c = by_link[f"cp-open-{i}"], by_link[f"cp-close-{i}"]
        gross = sum(Decimal(f["execPrice"]) * Decimal(f["execQty"]) for f in c) - sum(
            Decimal(f["execPrice"]) * Decimal(f["execQty"]) for f in o
        )
        fee = sum(Decimal(f["execFee"]) for f in o + c)
        row = next(r for r in all_rows if r["orderId"] == order_id)
        assert abs(Decimal(row["closedPnl"]) - (gross - fee)) <= Decimal("0.00000002")
    window = await get(
        http, "/v5/position/closed-pnl", {"category": "linear", "startTime": 0, "endTime": 9e11}
    )
    assert window.json()["retCode"] == 10001  # more than 7 days


# ---------------------------------------------------------------- hedge mode


async def test_hedge_mode_rows_and_position_idx_rules() -> None:
    async with (
        open_sim(SimConfig(seed=22, hedge_mode=True)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        sim.exchange.paused = True
        rows = (
            await get(http, "/v5/position/list", {"category": "linear", "symbol": SYMBOL})
        ).json()["result"]["list"]
        flat = [(1, "", "0"), (2, "", "0")]
        assert [(r["positionIdx"], r["side"], r["size"]) for r in rows] == flat
        refused = await _market(http, "Buy", "hedge-0")
        assert (refused["retCode"], refused["retMsg"]) == (
            10001,
            "position idx not match position mode",
        )
        assert (await _market(http, "Buy", "hedge-1", positionIdx=1))["retCode"] == 0
        rows = (
            await get(http, "/v5/position/list", {"category": "linear", "settleCoin": "USDT"})
        ).json()["result"]["list"]
        assert [(r["positionIdx"], r["side"], r["size"]) for r in rows] == [(1, "Buy", QTY)]
        _, mark = _prices(sim)
        stop = _px(sim, mark * Decimal("0.98"))
        wrong_mode = await _trading_stop(http, stopLoss=stop)
        assert (wrong_mode["retCode"], wrong_mode["retMsg"]) == (
            10001,
            "position idx not match position mode",
        )
        other_side = await _trading_stop(http, stopLoss=stop, positionIdx=2)
        assert other_side["retMsg"] == "can not set tp/sl/ts for zero position"
        assert (await _trading_stop(http, stopLoss=stop, positionIdx=1))["retCode"] == 0
        both = (
            await get(http, "/v5/position/list", {"category": "linear", "symbol": SYMBOL})
        ).json()["result"]["list"]
        assert [(r["positionIdx"], r["size"], r["stopLoss"]) for r in both] == [
            (1, QTY, stop),
            (2, "0", "0"),
        ]
        # selling the buy side closes it (hedge mode's reduce)
        assert (await _market(http, "Sell", "hedge-close", positionIdx=1))["retCode"] == 0
        assert sim.state()["positions"] == []


async def test_order_filter_on_open_orders(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, http = venue
    bid = sim.exchange.specs[SYMBOL].price_of(sim.exchange.sm(SYMBOL).book.bid_top)
    body = {
        "category": "linear",
        "symbol": SYMBOL,
        "side": "Buy",
        "orderType": "Limit",
        "qty": QTY,
        "price": str(bid - Decimal(50)),
        "orderLinkId": "of-rest",
    }
    assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0

    async def links(**extra: str) -> Any:
        query = {"category": "linear", "symbol": SYMBOL, **extra}
        reply = (await get(http, "/v5/order/realtime", query)).json()
        if reply["retCode"] != 0:
            return reply["retCode"]
        return [o["orderLinkId"] for o in reply["result"]["list"]]

    assert await links() == ["of-rest"]
    assert await links(orderFilter="Order") == ["of-rest"]
    assert await links(orderFilter="StopOrder") == []
    assert await links(orderFilter="Nope") == 10001


async def test_a_resting_entry_arms_its_stop_when_it_fills(
    venue: tuple[Sim, httpx.AsyncClient],
) -> None:
    sim, http = venue
    bid = sim.exchange.specs[SYMBOL].price_of(sim.exchange.sm(SYMBOL).book.bid_top)
    limit = _px(sim, bid * Decimal("0.99"))
    stop = _px(sim, bid * Decimal("0.94"))
    body = {
        "category": "linear",
        "symbol": SYMBOL,
        "side": "Buy",
        "orderType": "Limit",
        "timeInForce": "PostOnly",
        "qty": QTY,
        "price": limit,
        "orderLinkId": "rest-sl",
        "stopLoss": stop,
        "slTriggerBy": "MarkPrice",
        "tpslMode": "Full",
    }
    assert (await post(http, "/v5/order/create", body)).json()["retCode"] == 0
    assert (await _position(http))["stopLoss"] == "0"  # nothing to protect yet
    sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -2})
    row = await _position(http)
    assert (row["size"], row["avgPrice"], row["stopLoss"]) == (QTY, limit, stop)


async def test_outside_close_works_on_a_hedge_mode_account() -> None:
    async with (
        open_sim(SimConfig(seed=23, hedge_mode=True)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=5) as http,
    ):
        sim.exchange.paused = True
        assert (await _market(http, "Sell", "hedge-s", positionIdx=2))["retCode"] == 0
        assert sim.inject({"kind": "close_position", "symbol": SYMBOL}) == {
            "kind": "close_position",
            "closed": 1,
        }
        assert sim.state()["positions"] == []
        (row,) = (await _closed_pnl(http))["list"]
        assert (row["side"], row["closedSize"]) == ("Buy", QTY)


async def test_wick_must_be_a_bool(venue: tuple[Sim, httpx.AsyncClient]) -> None:
    sim, _ = venue
    with pytest.raises(ValueError, match="wick"):
        sim.inject({"kind": "price_jump", "symbol": SYMBOL, "pct": -1, "wick": "yes"})
