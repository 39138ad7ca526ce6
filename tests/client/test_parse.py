"""bybit.parse against Bybit's documented payloads (tests/fixtures/bybit, copied from
the shared reference samples) and against broken frames, which must be counted, never raised."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from scalper.bybit.parse import (
    BookMessage,
    ControlMessage,
    FillsMessage,
    OrdersMessage,
    ParseError,
    ParseStats,
    PositionsMessage,
    TickerMessage,
    TradesMessage,
    WalletMessage,
    book_from_rest,
    closed_pnl_from_wire,
    fill_from_wire,
    instrument_from_wire,
    order_from_wire,
    parse_message,
    position_from_wire,
    ticker_from_wire,
    wallet_from_wire,
)
from scalper.core.book import BookStatus, OrderBook
from scalper.core.model import OrderStatus, OrderType, Side

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"


def sample(name: str) -> Any:
    """The documented response of one sample file."""
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def linear_order() -> Any:
    """Bybit's documented order push is an option order: the same row as linear."""
    raw = sample("ws_private_order")
    raw["data"][0]["category"] = "linear"
    return raw


def frame(name: str) -> str:
    return json.dumps(sample(name))


@pytest.fixture
def stats() -> ParseStats:
    return ParseStats(name="test")


# ---------------------------------------------------------------- public stream


def test_book_snapshot_and_delta_feed_the_core_book(stats: ParseStats) -> None:
    snap = parse_message(frame("ws_public_orderbook_snapshot"), stats)
    assert isinstance(snap, BookMessage)
    assert (snap.symbol, snap.kind, snap.update_id, snap.seq, snap.ts_ms) == (
        "BTCUSDT",
        "snapshot",
        18521288,
        7961638724,
        1672304484978,
    )
    assert snap.bids == [["16493.50", "0.006"], ["16493.00", "0.100"]]
    assert snap.asks == [["16611.00", "0.029"], ["16612.00", "0.213"]]
    book = OrderBook("BTCUSDT", "0.10")
    assert book.apply(snap.kind, snap.bids, snap.asks, snap.update_id, snap.ts_ms) is BookStatus.OK
    assert book.best_bid() == (16493.5, 0.006)

    delta = parse_message(frame("ws_public_orderbook_delta"), stats)
    assert isinstance(delta, BookMessage)
    assert delta.kind == "delta" and delta.update_id == 177400507
    assert len(delta.bids) == 5 and delta.asks[0] == ["30248.70", "0"]
    assert stats.errors == 0


def test_trades(stats: ParseStats) -> None:
    msg = parse_message(frame("ws_public_publicTrade"), stats)
    assert isinstance(msg, TradesMessage)
    assert msg.symbol == "BTCUSDT"
    (t,) = msg.trades
    assert (t.symbol, t.price, t.qty, t.side, t.ts_ms) == (
        "BTCUSDT",
        16578.5,
        0.001,
        Side.BUY,
        1672304486865,
    )


def test_ticker_snapshot_and_delta_merge(stats: ParseStats) -> None:
    msg = parse_message(frame("ws_public_tickers_linear_snapshot"), stats)
    assert isinstance(msg, TickerMessage)
    assert msg.kind == "snapshot" and msg.ts_ms == 1760325052630
    t = msg.ticker
    assert (t.symbol, t.last_price, t.turnover_24h, t.price_24h_pcnt) == (
        "BTCUSDT",
        66666.6,
        4936790807.6521,
        -0.158315,
    )
    delta = {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "ts": 1,
        "cs": 2,
        "data": {"symbol": "BTCUSDT", "lastPrice": "66670.1"},
    }
    d = parse_message(json.dumps(delta), stats)
    assert isinstance(d, TickerMessage)
    assert d.ticker.turnover_24h is None
    merged = t.merged(d.ticker)
    assert merged.last_price == 66670.1 and merged.turnover_24h == t.turnover_24h


def test_control_messages(stats: ParseStats) -> None:
    pub = parse_message(frame("ws_public_ping_pong"), stats)
    priv = parse_message(frame("ws_private_ping_pong"), stats)
    auth = parse_message(frame("ws_private_auth"), stats)
    sub = parse_message(frame("ws_public_subscribe"), stats)
    assert isinstance(pub, ControlMessage) and pub.is_pong
    assert isinstance(priv, ControlMessage) and priv.is_pong and priv.req_id == "test"
    assert isinstance(auth, ControlMessage) and auth.op == "auth" and auth.success is True
    assert not auth.is_pong
    assert isinstance(sub, ControlMessage) and sub.op == "subscribe" and sub.success is True


# ---------------------------------------------------------------- private stream


def test_order_push(stats: ParseStats) -> None:
    raw = linear_order()
    raw["data"][0].update(symbol="BTCUSDT", orderLinkId="scalp-1", leavesQty="0")
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, OrdersMessage)
    (u,) = msg.updates
    assert u.symbol == "BTCUSDT" and u.order_link_id == "scalp-1"
    assert u.status is OrderStatus.FILLED and u.status.is_final
    assert u.side is Side.SELL and u.order_type is OrderType.MARKET
    assert u.qty == Decimal("1") and u.cum_exec_qty == Decimal("1")
    assert u.avg_price == Decimal("75") and u.price == Decimal("72.5")
    assert u.updated_ms == 1672364262457
    assert u.reject_reason == "EC_NoError"


def test_order_push_empty_leaves_qty_reads_zero(stats: ParseStats) -> None:
    msg = parse_message(json.dumps(linear_order()), stats)
    assert isinstance(msg, OrdersMessage)
    assert msg.updates[0].leaves_qty == 0


def test_execution_push_and_fast(stats: ParseStats) -> None:
    msg = parse_message(frame("ws_private_execution"), stats)
    assert isinstance(msg, FillsMessage)
    (f,) = msg.fills
    assert f.exec_id == "0ab1bdf7-4219-438b-b30a-32ec863018f7"
    assert (f.price, f.qty, f.fee, f.is_maker, f.side) == (
        Decimal("95900.1"),
        Decimal("0.5"),
        Decimal("26.3725275"),
        False,
        Side.SELL,
    )
    assert f.exec_time_ms == 1746270400353
    fast = parse_message(frame("ws_private_execution_fast"), stats)
    assert isinstance(fast, FillsMessage)
    assert fast.fills[0].order_link_id == "test-00001" and fast.fills[0].fee == 0


def test_funding_execution_is_ignored_not_an_error(stats: ParseStats) -> None:
    raw = sample("ws_private_execution")
    raw["data"][0]["execType"] = "Funding"
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, FillsMessage) and msg.fills == ()
    assert stats.ignored == 1 and stats.errors == 0


def test_position_push_flat_uses_entry_price(stats: ParseStats) -> None:
    msg = parse_message(frame("ws_private_position"), stats)
    assert isinstance(msg, PositionsMessage)
    (p,) = msg.positions
    assert p.symbol == "BTCUSDT" and p.side is None and p.size == 0 and p.is_flat
    assert p.realised_pnl == Decimal("-25.06579337")
    raw = sample("ws_private_position")
    raw["data"][0].update(side="Buy", size="0.5", entryPrice="28000.5", unrealisedPnl="3")
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, PositionsMessage)
    p = msg.positions[0]
    assert (p.side, p.size, p.avg_price, p.unrealised_pnl) == (
        Side.BUY,
        Decimal("0.5"),
        Decimal("28000.5"),
        Decimal("3"),
    )


def test_wallet_push(stats: ParseStats) -> None:
    msg = parse_message(frame("ws_private_wallet"), stats)
    assert isinstance(msg, WalletMessage)
    (w,) = msg.wallets
    assert w.total_equity == Decimal("10262.91335023")
    assert w.total_available_balance == Decimal("9556.6056555")
    btc = w.coin("BTC")
    assert btc is not None and btc.wallet_balance == Decimal("0.00102964")
    assert w.coin("USDT") is None


#: per private topic: a good row, and the same row broken in one field
PRIVATE_ROWS: dict[str, tuple[Any, str, str]] = {
    "order": (linear_order, "orderStatus", "Exploded"),
    "execution": (lambda: sample("ws_private_execution"), "execPrice", "abc"),
    "position": (lambda: sample("ws_private_position"), "size", "lots"),
    "wallet": (lambda: sample("ws_private_wallet"), "totalEquity", "rich"),
}


def _items(msg: Any) -> tuple[Any, ...]:
    for name in ("updates", "fills", "positions", "wallets"):
        if hasattr(msg, name):
            items: tuple[Any, ...] = getattr(msg, name)
            return items
    raise AssertionError(f"not a private message: {msg!r}")


@pytest.mark.parametrize("topic", PRIVATE_ROWS)
def test_one_bad_row_does_not_drop_the_good_rows(topic: str, stats: ParseStats) -> None:
    make, field, bad_value = PRIVATE_ROWS[topic]
    raw = make()
    good = raw["data"][0]
    bad = dict(good, **{field: bad_value})
    raw["data"] = [good, bad, "not an object", good]
    msg = parse_message(json.dumps(raw), stats)
    assert msg is not None
    assert len(_items(msg)) == 2  # both good rows kept
    assert stats.errors == 2 and stats.ignored == 0


@pytest.mark.parametrize("topic", ["order", "execution", "position"])
def test_rows_of_other_categories_are_ignored(topic: str, stats: ParseStats) -> None:
    make, _, _ = PRIVATE_ROWS[topic]
    raw = make()
    good = raw["data"][0]
    raw["data"] = [dict(good, category="spot"), good, dict(good, category="option")]
    msg = parse_message(json.dumps(raw), stats)
    assert msg is not None and len(_items(msg)) == 1
    assert stats.ignored == 2 and stats.errors == 0
    # the documented order sample is an option order: ignored, not an error
    assert parse_message(frame("ws_private_order"), ParseStats()) is not None


# ---------------------------------------------------------------- REST rows


def test_rest_rows() -> None:
    inst = instrument_from_wire(sample("rest_market_instruments-info_linear")["result"]["list"][0])
    assert (inst.symbol, inst.tick_size, inst.qty_step, inst.min_qty) == (
        "BTCUSDT",
        Decimal("0.10"),
        Decimal("0.001"),
        Decimal("0.001"),
    )
    assert inst.max_qty == Decimal("1190.000") and inst.max_mkt_qty == Decimal("500.000")
    assert inst.min_notional == Decimal("5")

    pos = position_from_wire(sample("rest_position_list")["result"]["list"][0])
    assert (pos.side, pos.size, pos.avg_price) == (
        Side.SELL,
        Decimal("300"),
        Decimal("27464.50441675"),
    )

    order = order_from_wire(sample("rest_order_realtime")["result"]["list"][0])
    assert order.status is OrderStatus.NEW and not order.status.is_final
    assert order.avg_price is None and order.price == Decimal("1600.00")
    assert order.leaves_qty == Decimal("0.10") and order.order_link_id == "test-000005"

    hist = order_from_wire(sample("rest_order_history")["result"]["list"][0])
    assert hist.status is OrderStatus.CANCELLED
    assert hist.reject_reason == "EC_PostOnlyWillTakeLiquidity" and hist.cum_exec_qty == 0

    fill = fill_from_wire(sample("rest_execution_list")["result"]["list"][0])
    assert fill is not None and fill.fee == Decimal("0.071409") and fill.order_link_id == ""

    tick = ticker_from_wire(sample("rest_market_tickers_linear")["result"]["list"][0])
    assert tick.price_24h_pcnt == 0.142425 and tick.bid1_price == 103401.0

    wallet = wallet_from_wire(sample("rest_account_wallet-balance")["result"]["list"][0])
    assert wallet.account_type == "UNIFIED" and wallet.total_equity == Decimal("3.31216591")

    book = book_from_rest(sample("rest_market_orderbook")["result"])
    assert (
        book.kind == "snapshot"
        and book.update_id == 230704
        and book.asks == [["65557.7", "16.606555"]]
    )


def test_rest_row_errors_name_the_field() -> None:
    row = copy.deepcopy(sample("rest_order_realtime")["result"]["list"][0])
    del row["orderStatus"]
    with pytest.raises(ParseError, match="orderStatus") as info:
        order_from_wire(row)
    assert info.value.kind == "missing_field"
    row["orderStatus"] = "Exploded"
    with pytest.raises(ParseError, match="orderStatus"):
        order_from_wire(row)
    row["orderStatus"] = "New"
    row["qty"] = 0.1  # a float where Bybit sends a string
    with pytest.raises(ParseError, match="qty") as info:
        order_from_wire(row)
    assert info.value.kind == "wrong_type"


# ---------------------------------------------------------------- broken frames


def _book_delta() -> dict[str, Any]:
    return copy.deepcopy(sample("ws_public_orderbook_delta"))


def _mutate(fn: Any) -> str:
    obj = _book_delta()
    fn(obj)
    return json.dumps(obj)


BROKEN = [
    ("not json", "malformed_json"),
    ('{"topic": "orderbook.50.BTCUSDT", "data": ', "malformed_json"),
    ("[1, 2, 3]", "malformed_json"),
    ('"just a string"', "malformed_json"),
    ('{"hello": "world"}', "unknown_message"),
    ('{"topic": "liquidation.BTCUSDT", "data": {}}', "unknown_topic"),
    (_mutate(lambda o: o["data"].pop("u")), "missing_field"),
    (_mutate(lambda o: o.pop("data")), "missing_field"),
    (_mutate(lambda o: o["data"].update(b="oops")), "wrong_type"),
    (_mutate(lambda o: o["data"].update(u="177400507")), "wrong_type"),
    (_mutate(lambda o: o.update(data=[1])), "wrong_type"),
    (_mutate(lambda o: o.update(type="weird")), "bad_value"),
    (
        '{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"s":"X","S":"Up","v":"1","p":"1","T":1}]}',
        "bad_value",
    ),
    (
        '{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"s":"X","S":"Buy","v":"1","p":"abc","T":1}]}',
        "bad_value",
    ),
    (
        '{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"s":"X","S":"Buy","v":"1","p":"1"}]}',
        "missing_field",
    ),
    ('{"topic":"order","data":[{"symbol":"X"}]}', "missing_field"),
    ('{"topic":"execution","data":"nope"}', "wrong_type"),
    (
        '{"topic":"position","data":[{"symbol":"X","side":"Buy","size":"NaN","entryPrice":"1"}]}',
        "bad_value",
    ),
    (
        '{"topic":"position","data":[{"symbol":"X","side":"Buy","size":"1","entryPrice":"-1"}]}',
        "bad_value",
    ),
    ('{"topic":"position","data":[{"symbol":"X","side":"Buy","size":"1"}]}', "missing_field"),
    ('{"op": 5}', "wrong_type"),
]


@pytest.mark.parametrize(("raw", "kind"), BROKEN)
def test_broken_frames_are_counted_never_raised(raw: str, kind: str) -> None:
    stats = ParseStats(name="test")
    assert parse_message(raw, stats) is None
    assert stats.counts == {kind: 1}


def test_bytes_input_and_many_failures_keep_counting() -> None:
    stats = ParseStats(name="test")
    good = frame("ws_public_orderbook_delta").encode()
    for _ in range(50):
        assert parse_message(b"\x00garbage", stats) is None
        assert isinstance(parse_message(good, stats), BookMessage)
    assert stats.counts["malformed_json"] == 50
    assert stats.as_dict()["malformed_json"] == 50


def test_failure_logging_is_rate_limited() -> None:
    from loguru import logger

    now = [0.0]
    stats = ParseStats(name="test", log_interval_s=10.0, monotonic=lambda: now[0])
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        for _ in range(100):
            parse_message("nope", stats)
        now[0] = 11.0
        parse_message("nope", stats)
    finally:
        logger.remove(sink)
    assert len(lines) == 2
    assert "99 similar not logged" in lines[1]
    assert stats.counts["malformed_json"] == 101


# ---------------------------------------------------------------- issue 9: stops, fees, closed PnL


def _rest_position(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = copy.deepcopy(sample("rest_position_list")["result"]["list"][0])
    row.update(fields)
    return row


@pytest.mark.parametrize("none", ["", "0", "0.00"])
def test_position_without_a_stop_reads_none(none: str) -> None:
    p = position_from_wire(_rest_position(stopLoss=none, takeProfit=none))
    assert (p.stop_loss, p.take_profit, p.position_idx) == (None, None, 0)


def test_position_rest_row_carries_its_stops_and_index() -> None:
    p = position_from_wire(_rest_position(stopLoss="26900.5", takeProfit="28000", positionIdx=2))
    assert p.stop_loss == Decimal("26900.5") and p.take_profit == Decimal("28000")
    assert p.position_idx == 2
    assert p.avg_price == Decimal("27464.50441675")  # REST: avgPrice


def test_position_push_carries_stop_and_hedge_index(stats: ParseStats) -> None:
    raw = sample("ws_private_position")
    raw["data"][0].update(side="Sell", size="0.5", entryPrice="28000.5", stopLoss="28500")
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, PositionsMessage)
    (p,) = msg.positions
    assert (p.side, p.avg_price, p.stop_loss, p.take_profit, p.position_idx) == (
        Side.SELL,
        Decimal("28000.5"),  # stream: entryPrice
        Decimal("28500"),
        None,  # "0" in the sample
        2,  # the sample is the sell side of a hedge-mode account
    )


def test_position_with_a_bad_stop_or_index_is_counted_and_skipped(stats: ParseStats) -> None:
    raw = sample("ws_private_position")
    good = copy.deepcopy(raw["data"][0])
    raw["data"] = [
        dict(good, stopLoss="abc"),
        dict(good, positionIdx=7),
        dict(good, stopLoss=12.5),
        good,
    ]
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, PositionsMessage) and len(msg.positions) == 1
    assert stats.errors == 3


def test_order_row_stop_fields_and_fee() -> None:
    row = copy.deepcopy(sample("rest_order_history")["result"]["list"][0])
    u = order_from_wire(row)
    # REST "UNKNOWN" reads as "", createType absent, the fee only in MNT -> 0 USDT
    assert (u.stop_order_type, u.create_type, u.cum_fee) == ("", "", Decimal(0))
    row.update(
        stopOrderType="StopLoss",
        createType="CreateByStopLoss",
        cumFeeDetail={"USDT": "0.9315"},
        cumExecFee="0.5",
    )
    u = order_from_wire(row)
    assert (u.stop_order_type, u.create_type, u.cum_fee) == (
        "StopLoss",
        "CreateByStopLoss",
        Decimal("0.9315"),
    )
    del row["cumFeeDetail"]
    assert order_from_wire(row).cum_fee == Decimal("0.5")  # the deprecated field as fallback


def test_order_push_with_a_bad_fee_detail_is_counted(stats: ParseStats) -> None:
    raw = linear_order()
    good = copy.deepcopy(raw["data"][0])
    raw["data"] = [dict(good, cumFeeDetail="x"), dict(good, cumFeeDetail={"USDT": 1}), good]
    msg = parse_message(json.dumps(raw), stats)
    assert isinstance(msg, OrdersMessage) and len(msg.updates) == 1
    assert stats.errors == 2


#: a closed-pnl row as Bybit documents it (docs/v5/position/close-pnl.mdx, linear)
CLOSED_PNL_ROW = {
    "symbol": "ETHPERP",
    "orderType": "Market",
    "leverage": "3",
    "updatedTime": "1672214887236",
    "side": "Sell",
    "orderId": "5a373bfe-188d-4913-9c81-d57ab5be8068",
    "closedPnl": "-47.4065323",
    "avgEntryPrice": "1194.97516667",
    "qty": "3",
    "cumEntryValue": "3584.9255",
    "createdTime": "1672214887231",
    "orderPrice": "1122.95",
    "closedSize": "3",
    "avgExitPrice": "1180.59833333",
    "execType": "Trade",
    "fillCount": "4",
    "cumExitValue": "3541.795",
}


def test_closed_pnl_row() -> None:
    r = closed_pnl_from_wire(CLOSED_PNL_ROW)
    assert (r.symbol, r.order_id, r.side, r.exec_type) == (
        "ETHPERP",
        "5a373bfe-188d-4913-9c81-d57ab5be8068",
        Side.SELL,
        "Trade",
    )
    assert (r.qty, r.closed_size, r.closed_pnl) == (Decimal(3), Decimal(3), Decimal("-47.4065323"))
    assert (r.avg_entry_price, r.avg_exit_price) == (
        Decimal("1194.97516667"),
        Decimal("1180.59833333"),
    )
    assert (r.created_ms, r.updated_ms) == (1672214887231, 1672214887236)


@pytest.mark.parametrize(
    "broken",
    [{"closedPnl": "n/a"}, {"side": "Up"}, {"closedSize": 3}, {"updatedTime": "soon"}],
)
def test_closed_pnl_bad_row_is_a_parse_error(broken: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        closed_pnl_from_wire({**CLOSED_PNL_ROW, **broken})
