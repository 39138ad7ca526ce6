"""The backtest's venue: the simulator's matcher driven by tiny recorded books and tapes.

Every expectation is computed by hand from the book and trades written in the test
(prices on a 0.01 grid, quantities on 0.1): the depth a market order walks, the queue a
PostOnly order waits behind, the fees, the latency, the confirmation timeout and the
exchange-side stop.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from scalper.core.book import OrderBook
from scalper.core.model import (
    ClosedPnlRows,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderPartiallyFilled,
    OrderType,
    PositionSnapshot,
    ProtectionFailed,
    ProtectionSet,
    Side,
    TimeInForce,
    Trade,
    TriggerBy,
)
from scalper.replay.venue import MatchingVenue, VenueSettings

from ..unit._engine_helpers import instrument

D = Decimal
SYM = "SOLUSDT"
T0 = 1_733_011_200_000


def _book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], u: int = 1) -> OrderBook:
    book = OrderBook(SYM, "0.01")
    book.apply_snapshot([list(b) for b in bids], [list(a) for a in asks], u, T0)
    return book


def _venue(book: OrderBook, **settings: object) -> MatchingVenue:
    return MatchingVenue(book, instrument(), VenueSettings(**settings))  # type: ignore[arg-type]


def _market(side: Side, qty: str, link: str = "e1", **kw: object) -> OrderIntent:
    return OrderIntent(symbol=SYM, side=side, order_type=OrderType.MARKET, qty=D(qty),
                       order_link_id=link, **kw)  # type: ignore[arg-type]  # fmt: skip


def _post_only(side: Side, qty: str, price: str, link: str = "e1") -> OrderIntent:
    return OrderIntent(symbol=SYM, side=side, order_type=OrderType.LIMIT, qty=D(qty),
                       price=D(price), time_in_force=TimeInForce.POST_ONLY,
                       order_link_id=link)  # fmt: skip


def _trade(price: float, qty: float, side: Side, t: int = T0) -> Trade:
    return Trade(symbol=SYM, price=price, qty=qty, side=side, ts_ms=t)


ASKS = [("100.01", "2"), ("100.02", "3"), ("100.03", "10")]
BIDS = [("100.00", "5"), ("99.99", "4")]


def test_a_market_order_walks_three_recorded_levels_and_pays_the_taker_fee() -> None:
    venue = _venue(_book(BIDS, ASKS))
    events = venue.place(_market(Side.BUY, "7"), T0, None, None)
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
    # 2 @ 100.01 + 3 @ 100.02 + 2 @ 100.03 = 700.14 for 7: average 100.02
    assert events[1] == OrderFilled(order_link_id="e1", filled_qty=D("7.0"), avg_price=D("100.02"))
    assert [(f.price, f.qty, f.maker) for f in venue.fills] == [
        (D("100.01"), D("2.0"), False),
        (D("100.02"), D("3.0"), False),
        (D("100.03"), D("2.0"), False),
    ]
    assert venue.fees == D("700.14") * D("0.00055")
    assert venue.position() == PositionSnapshot(
        symbol=SYM, side=Side.BUY, size=D("7.0"), avg_price=D("100.02")
    )


def test_a_market_order_larger_than_the_recorded_depth_fills_what_is_there() -> None:
    venue = _venue(_book(BIDS, ASKS))
    events = venue.place(_market(Side.SELL, "12"), T0, None, None)
    # the bids hold 5 + 4 = 9: the rest of the IOC is cancelled, the fill is real
    assert events[-1] == OrderFailed(
        order_link_id="e1",
        reason="cancelled (EC_NoError)",
        filled_qty=D("9.0"),
        avg_price=(D("500.00") + D("399.96")) / 9,
    )


def test_post_only_fills_only_after_the_size_resting_ahead_of_it_has_traded() -> None:
    venue = _venue(_book(BIDS, ASKS))
    assert venue.place(_post_only(Side.BUY, "2", "100.00"), T0, None, None) == [
        OrderAccepted(order_link_id="e1", order_id=venue.account.by_link["e1"].order_id)
    ]
    # 5 were resting at 100.00 before us: the first 5 sold there are theirs
    assert venue.on_trades([_trade(100.00, 3, Side.SELL)], T0 + 1) == []
    assert venue.on_trades([_trade(100.00, 1, Side.BUY)], T0 + 2) == []  # a buy: not our side
    assert venue.on_trades([_trade(100.00, 3, Side.SELL)], T0 + 3) == [
        OrderPartiallyFilled(order_link_id="e1", filled_qty=D("1.0"), avg_price=D("100.00"))
    ]
    assert venue.on_trades([_trade(100.00, 1, Side.SELL)], T0 + 4) == [
        OrderFilled(order_link_id="e1", filled_qty=D("2.0"), avg_price=D("100.00"))
    ]
    assert [(f.maker, f.fee) for f in venue.fills] == [
        (True, D("100.00") * D("0.0002")),
        (True, D("100.00") * D("0.0002")),
    ]


def test_a_level_that_shrinks_shortens_the_queue_and_a_trade_through_fills_at_once() -> None:
    book = _book(BIDS, ASKS)
    venue = _venue(book, maker_fee=D("0.0001"))
    venue.place(_post_only(Side.BUY, "2", "100.00"), T0, None, None)
    book.apply_delta([["100.00", "1"]], [], 2, T0 + 1)  # 4 of the 5 ahead cancelled
    top = book.top()
    assert top is not None
    assert venue.on_book(top, T0 + 1) == []
    assert venue.on_trades([_trade(100.00, 1, Side.SELL)], T0 + 2) == []  # the last one ahead
    assert venue.on_trades([_trade(99.99, 0.5, Side.SELL)], T0 + 3) == [
        OrderFilled(order_link_id="e1", filled_qty=D("2.0"), avg_price=D("100.00"))
    ]  # sold below our price: the whole order filled
    assert venue.fees == D("200.00") * D("0.0001")


def test_post_only_that_would_cross_is_cancelled_as_bybit_does() -> None:
    venue = _venue(_book(BIDS, ASKS))
    events = venue.place(_post_only(Side.BUY, "1", "100.01"), T0, None, None)
    assert [type(e) for e in events] == [OrderAccepted, OrderFailed]
    assert isinstance(events[1], OrderFailed)
    assert "EC_PostOnlyWillTakeLiquidity" in events[1].reason
    assert venue.fills == []


def test_latency_the_order_meets_the_book_of_its_arrival() -> None:
    book = _book(BIDS, ASKS)
    venue = _venue(book, latency_ms=50)
    assert venue.place(_market(Side.BUY, "1"), T0, None, None) == []  # in flight
    book.apply_delta([], [["100.01", "0"], ["100.02", "0"]], 2, T0 + 30)
    assert venue.settle(T0 + 49) == []
    events = venue.settle(T0 + 50)
    assert events[-1] == OrderFilled(order_link_id="e1", filled_qty=D("1.0"), avg_price=D("100.03"))
    assert venue.fills[0].t == T0 + 50


def test_an_order_not_final_at_the_confirmation_timeout_is_cancelled_with_its_fill() -> None:
    venue = _venue(_book(BIDS, ASKS), confirm_timeout_ms=10_000, latency_ms=10)
    venue.place(_post_only(Side.BUY, "2", "99.99"), T0, None, None)
    venue.settle(T0 + 10)
    # the 4 ahead trade, then 1 of ours
    assert len(venue.on_trades([_trade(99.99, 5, Side.SELL)], T0 + 100)) == 1
    assert venue.expire(T0 + 9_999) == []
    assert venue.expire(T0 + 10_000) == []  # the cancel is on its way
    assert venue.settle(T0 + 10_010) == [
        OrderFailed(
            order_link_id="e1",
            reason="not filled within 10s: cancelled",
            filled_qty=D("1.0"),
            avg_price=D("99.99"),
        )
    ]
    assert venue.snapshot_events(SYM)[1] == OpenOrders(symbol=SYM, order_link_ids=())


@pytest.mark.parametrize("trigger", [TriggerBy.LAST_PRICE, TriggerBy.MARK_PRICE])
def test_the_exchange_stop_of_an_entry_closes_the_position_when_it_triggers(
    trigger: TriggerBy,
) -> None:
    book = _book(BIDS, ASKS)
    venue = _venue(book)
    entry = _market(Side.BUY, "2", stop_loss=D("99.50"), sl_trigger_by=trigger)
    venue.place(entry, T0, None, None)
    assert venue.position().stop_loss == D("99.50")  # the matcher armed it on the fill
    assert venue.on_trades([_trade(99.60, 1, Side.SELL)], T0 + 1) == []
    book.apply_snapshot([["99.49", "50"]], [["99.51", "50"]], 5, T0 + 2)
    top = book.top()
    assert top is not None
    events = venue.on_book(top, T0 + 2)  # mid 99.50: the mark (our stand-in) reached it
    if trigger is TriggerBy.LAST_PRICE:
        assert events == []  # the last trade (99.60) has not
        events = venue.on_trades([_trade(99.49, 1, Side.SELL)], T0 + 3)
    assert events == [
        PositionSnapshot(symbol=SYM, side=None, size=D(0)),
        OpenOrders(symbol=SYM, order_link_ids=()),
    ]
    close = venue.fills[-1]
    assert (close.order_link_id, close.side, close.qty, close.price) == (
        "", Side.SELL, D("2.0"), D("99.49")
    )  # fmt: skip
    assert venue.stops_fired == 1
    assert venue.realised_pnl == (D("99.49") - D("100.01")) * 2


def test_protect_position_is_the_matchers_trading_stop() -> None:
    venue = _venue(_book(BIDS, ASKS))
    assert venue.protect(SYM, D("99.00"), TriggerBy.MARK_PRICE) == [
        ProtectionFailed(symbol=SYM, reason="10001: can not set tp/sl/ts for zero position")
    ]
    venue.place(_market(Side.BUY, "1"), T0, None, None)
    assert venue.protect(SYM, D("99.00"), TriggerBy.MARK_PRICE) == [
        ProtectionSet(symbol=SYM, stop_loss=D("99.00"))
    ]
    assert venue.protect(SYM, D("99.00"), TriggerBy.MARK_PRICE) == [
        ProtectionSet(symbol=SYM, stop_loss=D("99.00"))
    ]  # the same again: Bybit's 34040 "not modified" means it holds
    (refused,) = venue.protect(SYM, D("101.00"), TriggerBy.MARK_PRICE)  # above a long's mark
    assert isinstance(refused, ProtectionFailed) and "10001" in refused.reason
    assert venue.position().stop_loss == D("99.00")


def test_closed_pnl_rows_are_the_matchers_records_net_of_both_fees() -> None:
    venue = _venue(_book(BIDS, ASKS))
    venue.place(_market(Side.BUY, "2"), T0, None, None)  # 2 @ 100.01
    venue.place(_market(Side.SELL, "2", link="x1", reduce_only=True), T0 + 1, None, None)
    (rows,) = venue.closed_pnl(SYM)
    assert isinstance(rows, ClosedPnlRows)
    (row,) = rows.rows
    gross = (D("100.00") - D("100.01")) * 2
    fees = (D("200.02") + D("200.00")) * D("0.00055")
    assert (row.side, row.closed_size, row.closed_pnl) == (Side.SELL, D("2"), gross - fees)
    assert venue.closed_pnl("XRPUSDT") == [ClosedPnlRows(rows=())]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_reduce_only_never_grows_or_flips_the_position(side: Side) -> None:
    venue = _venue(_book(BIDS, ASKS))
    venue.place(_market(side, "3"), T0, None, None)
    close = _market(side.opposite, "5", link="x1", reduce_only=True)
    events = venue.place(close, T0 + 1, None, None)
    assert events[-1] == OrderFilled(
        order_link_id="x1",
        filled_qty=D("3.0"),
        # a sell of 3 into the bids (5 @ 100.00); a buy of 3 walks 2 @ 100.01 + 1 @ 100.02
        avg_price=D("100.00") if side is Side.BUY else (D("200.02") + D("100.02")) / 3,
    )  # clamped to the position
    assert venue.position() == PositionSnapshot(symbol=SYM, side=None, size=D(0))
    refused = venue.place(_market(side, "1", link="x2", reduce_only=True), T0 + 2, None, None)
    assert isinstance(refused[0], OrderFailed) and "110017" in refused[0].reason
