"""The market feed: the latest book wins, trades are all kept (bounded), and nothing is
ever dropped silently; a strategy that keeps up sees every update, in order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.feed import MarketFeed, MarketMessage
from scalper.app.metrics import Metrics
from scalper.core.model import BookTop, BookUpdate, Side, Trade, TradeTicks


def _top(i: int) -> BookTop:
    return BookTop(symbol="SOLUSDT", bid=100.0 + i, bid_size=1, ask=101.0 + i, ask_size=1, ts_ms=i)


def _trade(i: int, symbol: str = "SOLUSDT") -> Trade:
    return Trade(symbol=symbol, price=100.0 + i, qty=1.0, side=Side.BUY, ts_ms=i)


def _feed(now: list[float], **kw: int) -> tuple[MarketFeed, Metrics]:
    metrics = Metrics()
    return MarketFeed(metrics, clock=lambda: now[0], log_interval_s=5.0, **kw), metrics


def _drain(feed: MarketFeed) -> list[tuple[float, MarketMessage]]:
    out = []
    while (item := feed.take_nowait()) is not None:
        out.append(item)
    return out


def test_a_lagging_strategy_gets_the_latest_book_and_every_superseded_one_is_counted() -> None:
    now = [0.0]
    feed, metrics = _feed(now, lag_after=0)  # lagging from the first replaced book on
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        sent = [feed.book(_top(i), received_at=float(i)) for i in range(5)]
        now[0] = 1.0
        feed.book(_top(9), received_at=9.0)
        now[0] = 6.0
        feed.book(_top(10), received_at=10.0)
    finally:
        logger.remove(sink)
    assert sent == [True, False, False, False, False]
    assert metrics.market_dropped == 6
    # first drop logs at once; the next line comes after the interval with the count since
    assert len(lines) == 2
    assert "dropped 1 updates" in lines[0]
    assert "dropped 5 updates" in lines[1] and "6 total" in lines[1]
    assert _drain(feed) == [(10.0, BookUpdate(top=_top(10)))]
    assert not feed.pending_book


def test_trades_are_all_kept_and_delivered_before_the_book_with_the_oldest_time() -> None:
    now = [0.0]
    feed, metrics = _feed(now, lag_after=0)
    assert feed.book(_top(0), received_at=0.0)
    assert feed.trades("SOLUSDT", (_trade(1), _trade(2)), received_at=1.0)
    assert feed.trades("SOLUSDT", (_trade(3),), received_at=2.0)
    assert not feed.book(_top(4), received_at=3.0)  # supersedes book 0
    assert feed.pending_trades == 3
    assert _drain(feed) == [
        (1.0, TradeTicks(symbol="SOLUSDT", trades=(_trade(1), _trade(2), _trade(3)))),
        (3.0, BookUpdate(top=_top(4))),
    ]
    assert feed.pending_trades == 0
    assert metrics.market_dropped == 1  # the book only: no trade was lost


def test_the_trade_backlog_is_bounded_and_what_overflows_is_counted() -> None:
    now = [0.0]
    feed, metrics = _feed(now, max_pending_trades=3)
    assert feed.trades("SOLUSDT", (_trade(1), _trade(2)), received_at=0.0)
    assert not feed.trades("SOLUSDT", (_trade(3), _trade(4), _trade(5)), received_at=0.0)
    assert metrics.market_dropped == 2
    [(_, message)] = _drain(feed)
    assert message == TradeTicks(symbol="SOLUSDT", trades=(_trade(3), _trade(4), _trade(5)))


def test_pending_trades_of_an_old_symbol_are_discarded_on_switch() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    feed.trades("SOLUSDT", (_trade(1),), received_at=0.0)
    other = _trade(2, "XRPUSDT")
    assert feed.trades("XRPUSDT", (other,), received_at=0.0)
    assert [m for _, m in _drain(feed)] == [TradeTicks(symbol="XRPUSDT", trades=(other,))]


async def test_a_strategy_that_keeps_up_sees_every_update_in_order() -> None:
    now = [0.0]
    feed, metrics = _feed(now)
    seen: list[MarketMessage] = []

    async def strategy() -> None:
        async with feed.receiver as market:
            async for _, message in market:
                seen.append(message)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(strategy)
            for i in range(20):
                if i % 4 == 0:
                    feed.trades("SOLUSDT", (_trade(i),), received_at=0.0)
                else:
                    feed.book(_top(i), received_at=0.0)
                await trio.testing.wait_all_tasks_blocked()
            feed.close()
    assert metrics.market_dropped == 0
    expected: list[MarketMessage] = [
        TradeTicks(symbol="SOLUSDT", trades=(_trade(i),)) if i % 4 == 0 else BookUpdate(top=_top(i))
        for i in range(20)
    ]
    assert seen == expected


async def test_receive_waits_for_an_update_and_ends_after_close() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    got: list[tuple[float, MarketMessage]] = []

    async def one() -> None:
        got.append(await feed.receive())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # parked: nothing to take
            feed.book(_top(1), received_at=7.0)
        assert got == [(7.0, BookUpdate(top=_top(1)))]
        feed.book(_top(2), received_at=8.0)
        feed.close()
        assert await feed.receive() == (8.0, BookUpdate(top=_top(2)))  # drained first
        with pytest.raises(trio.EndOfChannel):
            await feed.receive()
    with pytest.raises(trio.WouldBlock):
        feed.receiver.receive_nowait()


def test_a_book_replaced_in_a_burst_is_coalesced_not_a_lag() -> None:
    # a few updates from one socket read while the strategy is busy: the newest wins,
    # quietly; only after ``lag_after`` updates with nothing taken is it a lag
    now = [0.0]
    feed, metrics = _feed(now, lag_after=3)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        assert all(feed.book(_top(i), received_at=float(i)) for i in range(3))
        assert (feed.coalesced, metrics.market_dropped, lines) == (2, 0, [])
        assert not feed.book(_top(3), received_at=3.0)  # the 4th with nothing taken
        assert (feed.coalesced, metrics.market_dropped, len(lines)) == (2, 1, 1)
        assert _drain(feed) == [(3.0, BookUpdate(top=_top(3)))]
        assert feed.book(_top(4), received_at=4.0)  # taken since: not lagging any more
        assert feed.book(_top(5), received_at=5.0)
        assert (feed.coalesced, metrics.market_dropped) == (3, 1)
    finally:
        logger.remove(sink)


async def test_only_a_receiver_parked_now_is_handed_an_update_at_once() -> None:
    # the feed counts its parked receivers itself (asking its lot is a call per offer):
    # a receiver woken by an update, or cancelled while parked, is parked no more, and
    # with none parked an offer is kept for whoever asks next, not handed over
    now = [0.0]
    feed, _ = _feed(now)
    handed: list[MarketMessage] = []

    def handler(received_at: float, message: MarketMessage) -> bool:
        handed.append(message)
        return True

    feed.deliver_to(handler)
    got: list[MarketMessage] = []

    async def one() -> None:
        got.append((await feed.receive())[1])

    with trio.fail_after(5):
        assert feed.book(_top(0), received_at=0.0) and handed == []  # nobody parked yet
        assert _drain(feed) == [(0.0, BookUpdate(top=_top(0)))]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            feed.book(_top(1), received_at=1.0)  # two parked: handed over at once
            assert handed == [BookUpdate(top=_top(1))] and got == []
            feed.deliver_to(None)
            feed.book(_top(2), received_at=2.0)  # wakes one receiver, the other still parked
            feed.deliver_to(handler)
            feed.book(_top(3), received_at=3.0)  # the woken one has not taken #2 yet: queued
            assert handed == [BookUpdate(top=_top(1))]
            await trio.testing.wait_all_tasks_blocked()
            assert got == [BookUpdate(top=_top(3))]  # the newest book, once, to one of them
            feed.book(_top(4), received_at=4.0)  # one still parked: handed over
            assert handed[-1] == BookUpdate(top=_top(4))
            nursery.cancel_scope.cancel()  # the parked one is cancelled
        feed.book(_top(5), received_at=5.0)
        assert handed[-1] == BookUpdate(top=_top(4))  # nobody parked: kept
        assert _drain(feed) == [(5.0, BookUpdate(top=_top(5)))]

        async def until_closed() -> None:
            with pytest.raises(trio.EndOfChannel):
                await feed.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_closed)
            await trio.testing.wait_all_tasks_blocked()
            feed.close()  # wakes it: parked no more
        feed.book(_top(6), received_at=6.0)
        assert handed[-1] == BookUpdate(top=_top(4)) and feed.pending_book


async def _cancel_parked_receiver(feed: MarketFeed, before_it_runs: Callable[[], None]) -> None:
    """Park a receiver, cancel it, and call ``before_it_runs`` in the same scheduler
    pass: the cancel is delivered (trio takes the task off its sleep), the task has not
    run again yet."""
    scope = trio.CancelScope()

    async def receiver() -> None:
        with scope:
            await feed.receive()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        before_it_runs()


def _handing_feed() -> tuple[MarketFeed, list[MarketMessage]]:
    feed, _ = _feed([0.0])
    handed: list[MarketMessage] = []
    feed.deliver_to(lambda received_at, message: handed.append(message) or True)
    return feed, handed


async def test_a_receiver_cancelled_while_parked_counts_as_parked_no_more_at_once() -> None:
    # an offer between the cancel and the cancelled task's next step finds nobody
    # parked: the book is kept, not handed to the handler as if a receiver waited for it
    feed, handed = _handing_feed()
    with trio.fail_after(5):
        await _cancel_parked_receiver(feed, lambda: feed.book(_top(1), received_at=1.0))
    assert handed == []
    assert _drain(feed) == [(1.0, BookUpdate(top=_top(1)))]


async def test_a_closed_feed_never_hands_an_offer_over_even_after_a_cancelled_receiver() -> None:
    feed, handed = _handing_feed()
    with trio.fail_after(5):
        await _cancel_parked_receiver(feed, feed.close)
    feed.book(_top(3), received_at=3.0)
    assert handed == []
    assert _drain(feed) == [(3.0, BookUpdate(top=_top(3)))]


async def test_close_wakes_every_parked_receiver_with_end_of_channel() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    ended: list[int] = []

    async def receiver(i: int) -> None:
        with pytest.raises(trio.EndOfChannel):
            await feed.receive()
        ended.append(i)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(receiver, i)
            await trio.testing.wait_all_tasks_blocked()
            feed.close()
    assert sorted(ended) == [0, 1, 2]
