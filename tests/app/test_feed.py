"""The market feed drops superseded books when full, keeps trades, and never drops silently."""

from __future__ import annotations

import trio
from loguru import logger

from scalper.app.feed import MarketFeed, MarketMessage
from scalper.app.metrics import Metrics
from scalper.core.model import BookTop, BookUpdate, Side, Trade, TradeTicks


def _top(i: int) -> BookTop:
    return BookTop(symbol="SOLUSDT", bid=100.0 + i, bid_size=1, ask=101.0 + i, ask_size=1, ts_ms=i)


def _trade(i: int) -> Trade:
    return Trade(symbol="SOLUSDT", price=100.0 + i, qty=1.0, side=Side.BUY, ts_ms=i)


def _feed(
    size: int, now: list[float]
) -> tuple[MarketFeed, Metrics, trio.MemoryReceiveChannel[tuple[float, MarketMessage]]]:
    send, receive = trio.open_memory_channel[tuple[float, MarketMessage]](size)
    metrics = Metrics()
    return MarketFeed(send, metrics, clock=lambda: now[0], log_interval_s=5.0), metrics, receive


def _drain(receive: trio.MemoryReceiveChannel[tuple[float, MarketMessage]]) -> list[MarketMessage]:
    out = []
    while True:
        try:
            out.append(receive.receive_nowait()[1])
        except trio.WouldBlock:
            return out


def test_full_channel_drops_counts_and_logs_once_per_interval() -> None:
    now = [0.0]
    feed, metrics, receive = _feed(2, now)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        sent = [feed.book(_top(i), received_at=0.0) for i in range(5)]
        now[0] = 1.0
        feed.book(_top(9), received_at=1.0)
        now[0] = 6.0
        feed.book(_top(10), received_at=6.0)
    finally:
        logger.remove(sink)
    assert sent == [True, True, False, False, False]
    assert metrics.market_dropped == 5
    # first drop logs at once; the next line comes after the interval with the count since
    assert len(lines) == 2
    assert "dropped 1 updates" in lines[0]
    assert "dropped 4 updates" in lines[1] and "5 total" in lines[1]
    assert [m.top.ts_ms for m in _drain(receive) if isinstance(m, BookUpdate)] == [0, 1]


def test_trades_are_kept_across_drops_and_delivered_before_the_next_book() -> None:
    now = [0.0]
    feed, metrics, receive = _feed(1, now)
    assert feed.book(_top(0), received_at=0.0)
    assert not feed.trades("SOLUSDT", (_trade(1), _trade(2)), received_at=0.0)
    assert not feed.trades("SOLUSDT", (_trade(3),), received_at=0.0)
    assert feed.pending_trades == 3
    assert _drain(receive) == [BookUpdate(top=_top(0))]
    # room again: the kept trades go first, the book waits for the next slot
    assert not feed.book(_top(4), received_at=0.0)
    messages = _drain(receive)
    assert messages == [TradeTicks(symbol="SOLUSDT", trades=(_trade(1), _trade(2), _trade(3)))]
    assert feed.pending_trades == 0
    assert metrics.market_dropped == 3


def test_pending_trades_of_an_old_symbol_are_discarded_on_switch() -> None:
    now = [0.0]
    feed, _, receive = _feed(1, now)
    feed.book(_top(0), received_at=0.0)
    feed.trades("SOLUSDT", (_trade(1),), received_at=0.0)
    _drain(receive)
    other = Trade(symbol="XRPUSDT", price=0.5, qty=10, side=Side.SELL, ts_ms=2)
    assert feed.trades("XRPUSDT", (other,), received_at=0.0)
    assert _drain(receive) == [TradeTicks(symbol="XRPUSDT", trades=(other,))]
