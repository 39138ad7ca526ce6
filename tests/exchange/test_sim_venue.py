"""The venue without sockets: determinism, book deltas under trading, fills, momentum."""

from __future__ import annotations

import itertools
from decimal import Decimal

import orjson
import pytest

from scalper.sim import Exchange, VenueError
from scalper.sim.outbox import Outbox
from scalper.sim.specs import DEFAULT_SPECS

KEY = "k"


def make(seed: int = 1, rate: float = 500.0) -> Exchange:
    clock = itertools.count(1_700_000_000_000, 2)
    return Exchange(
        DEFAULT_SPECS, seed=seed, rate=rate, clock=lambda: next(clock), credentials={KEY: "s"}
    )


def run(ex: Exchange, steps: int) -> list[str]:
    box = Outbox()
    now = ex.now_ms()
    for topic in (
        "orderbook.50.SOLUSDT",
        "orderbook.1.BTCUSDT",
        "publicTrade.ETHUSDT",
        "tickers.XRPUSDT",
    ):
        ex.public.subscribe(box, topic, now)
    for _ in range(steps):
        ex.step(ex.now_ms())
    return list(box.queue)


def test_same_seed_same_steps_same_market() -> None:
    a, b = make(seed=7), make(seed=7)
    assert run(a, 3000) == run(b, 3000)
    for symbol in a.specs:
        assert a.sm(symbol).book.bids == b.sm(symbol).book.bids
        assert a.sm(symbol).book.asks == b.sm(symbol).book.asks


def test_other_seed_other_market() -> None:
    assert run(make(seed=7), 500) != run(make(seed=8), 500)


class ClientBook:
    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.u = 0

    def apply(self, text: str) -> None:
        msg = orjson.loads(text)
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.bids, self.asks = dict(data["b"]), dict(data["a"])
        else:
            assert data["u"] == self.u + 1
            for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                for price, size in levels:
                    if size == "0":
                        side.pop(price, None)
                    else:
                        side[price] = size
        self.u = data["u"]


@pytest.mark.parametrize("depth", [1, 50, 200])
def test_deltas_track_the_book_through_trading_and_jumps(depth: int) -> None:
    ex = make(seed=3)
    account = ex.accounts[KEY]
    box = Outbox()
    ex.public.subscribe(box, f"orderbook.{depth}.ETHUSDT", ex.now_ms())
    client = ClientBook()
    spec = ex.specs["ETHUSDT"]
    for i in range(400):
        ex.step(ex.now_ms())
        if i % 50 == 7:  # a market order eats several levels
            ex.create_order(
                account,
                {
                    "symbol": "ETHUSDT",
                    "side": "Buy" if i % 100 == 7 else "Sell",
                    "orderType": "Market",
                    "qty": "40.00",
                },
            )
        if i == 200:
            ex.price_jump("ETHUSDT", 3.0)
        while box.queue:
            client.apply(box.queue.popleft())
        book = ex.sm("ETHUSDT").book
        assert client.bids == {spec.price_str(t): spec.qty_str(n) for t, n in book.top_bids(depth)}
        assert client.asks == {spec.price_str(t): spec.qty_str(n) for t, n in book.top_asks(depth)}


def test_resting_order_fills_partially_at_its_price() -> None:
    ex = make(seed=4)
    account = ex.accounts[KEY]
    sm = ex.sm("DOGEUSDT")
    spec = sm.spec
    bid = sm.book.bid_top
    order = ex.create_order(
        account,
        {
            "symbol": "DOGEUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "100000",
            "price": spec.price_str(bid),
        },
    )
    # a sell trade at our price smaller than our order: a partial, maker fill
    trade = ex.market.record_trade(sm, bid, 1000, "Sell", ex.now_ms(), "t-1")
    ex.matcher.fill_resting("DOGEUSDT", [trade], ex.now_ms())
    assert order.status == "PartiallyFilled"
    assert order.cum_qty == Decimal(1000)
    assert account.executions[-1].is_maker


def test_reduce_only_is_clamped_and_cancelled_when_flat() -> None:
    ex = make(seed=5)
    account = ex.accounts[KEY]
    ex.create_order(
        account, {"symbol": "SOLUSDT", "side": "Buy", "orderType": "Market", "qty": "5.0"}
    )
    assert account.position("SOLUSDT").size == Decimal("5.0")
    ask = ex.sm("SOLUSDT").book.ask_top
    resting = ex.create_order(
        account,
        {
            "symbol": "SOLUSDT",
            "side": "Sell",
            "orderType": "Limit",
            "qty": "5.0",
            "reduceOnly": True,
            "price": ex.specs["SOLUSDT"].price_str(ask + 500),
        },
    )
    close = ex.create_order(
        account,
        {
            "symbol": "SOLUSDT",
            "side": "Sell",
            "orderType": "Market",
            "qty": "50.0",
            "reduceOnly": True,
        },
    )
    assert close.qty == Decimal("5.0")  # clamped to the position
    assert account.position("SOLUSDT").size == 0
    assert resting.status == "Cancelled" and resting.cancel_type == "CancelByReduceOnly"
    with pytest.raises(VenueError) as refused:
        ex.create_order(
            account,
            {
                "symbol": "SOLUSDT",
                "side": "Sell",
                "orderType": "Market",
                "qty": "1.0",
                "reduceOnly": True,
            },
        )
    assert refused.value.code == 110017


def test_fok_is_all_or_nothing_and_ioc_cancels_the_rest() -> None:
    ex = make(seed=6)
    account = ex.accounts[KEY]
    sm = ex.sm("ETHUSDT")
    ask = sm.book.ask_top
    top = sm.spec.qty_of(sm.book.asks[ask])
    price = sm.spec.price_str(ask)
    big = str(top + Decimal("0.01") * 1000)
    fok = ex.create_order(
        account,
        {
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": big,
            "price": price,
            "timeInForce": "FOK",
        },
    )
    assert (fok.status, fok.cum_qty) == ("Cancelled", 0)
    ioc = ex.create_order(
        account,
        {
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": big,
            "price": price,
            "timeInForce": "IOC",
        },
    )
    assert ioc.status == "Cancelled" and ioc.cum_qty == top


def test_momentum_bursts_give_a_signal_within_30_s() -> None:
    """A momentum strategy (last vs VWAP of 100 trades, 0.1 %) sees a signal soon."""
    ex = make(seed=1, rate=500)
    steps_per_s = 500
    hits: set[str] = set()
    for _ in range(30 * steps_per_s):
        ex.step(ex.now_ms())
    for symbol in ex.specs:
        trades = list(ex.sm(symbol).trades)
        for end in range(100, len(trades)):
            window = trades[end - 100 : end]
            vol = sum(t.lots for t in window)
            vwap = sum(t.tick * t.lots for t in window) / vol
            if abs(window[-1].tick - vwap) / vwap > 0.001:
                hits.add(symbol)
                break
    assert len(hits - {"BTCUSDT", "ETHUSDT"}) >= 3, hits


def test_volume_at_the_touch_is_shared_between_resting_orders() -> None:
    ex = make(seed=4)
    account = ex.accounts[KEY]
    sm = ex.sm("DOGEUSDT")
    bid = sm.book.bid_top
    price = sm.spec.price_str(bid)
    first = ex.create_order(
        account,
        {"symbol": "DOGEUSDT", "side": "Buy", "orderType": "Limit", "qty": "600", "price": price},
    )
    second = ex.create_order(
        account,
        {"symbol": "DOGEUSDT", "side": "Buy", "orderType": "Limit", "qty": "600", "price": price},
    )
    trade = ex.market.record_trade(sm, bid, 1000, "Sell", ex.now_ms(), "t-2")
    ex.matcher.fill_resting("DOGEUSDT", [trade], ex.now_ms())
    assert (first.cum_qty, second.cum_qty) == (Decimal(600), Decimal(400))
    assert (first.status, second.status) == ("Filled", "PartiallyFilled")


def test_qty_zero_reduce_only_close_on_trigger_closes_everything() -> None:
    ex = make(seed=8)
    account = ex.accounts[KEY]
    ex.create_order(
        account, {"symbol": "LINKUSDT", "side": "Sell", "orderType": "Market", "qty": "12.3"}
    )
    assert account.position("LINKUSDT").size == Decimal("-12.3")
    close = ex.create_order(
        account,
        {
            "symbol": "LINKUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0",
            "reduceOnly": True,
            "closeOnTrigger": True,
        },
    )
    assert close.qty == Decimal("12.3") and close.status == "Filled"
    assert account.position("LINKUSDT").size == 0
    with pytest.raises(VenueError) as refused:
        ex.create_order(
            account, {"symbol": "LINKUSDT", "side": "Buy", "orderType": "Market", "qty": "0"}
        )
    assert refused.value.code == 10001


def test_depth_1_repeats_an_unchanged_snapshot_every_3_s_with_the_same_u() -> None:
    ex = make(seed=9)
    box = Outbox()
    now = 1_700_000_000_000
    ex.public.subscribe(box, "orderbook.1.BTCUSDT", now)
    first = orjson.loads(box.queue.popleft())
    ex.public.publish("BTCUSDT", [], now + 1000)  # nothing moved
    assert not box.queue
    ex.public.publish("BTCUSDT", [], now + 3000)
    again = orjson.loads(box.queue.popleft())
    assert again["type"] == "snapshot"
    assert again["data"]["u"] == first["data"]["u"]
    assert again["data"]["b"] == first["data"]["b"]


def test_slow_consumer_overflows_and_is_closed() -> None:
    box = Outbox(limit=3)
    for i in range(5):
        box.put(str(i))
    assert list(box.queue) == ["0", "1", "2"]
    assert box.overflowed and box.closed and box.close_code == 1013


def test_closed_pnl_is_net_of_fees_pro_rata_through_a_flip() -> None:
    """Short 1.00, buy 1.50 (closes 1.00, opens 0.50 long), sell 0.50: two records, each
    the gross PnL of its closed quantity minus its share of the opening and closing fees."""
    ex = make(seed=5)
    ex.paused = True
    account = ex.accounts[KEY]

    def market(side: str, qty: str, **extra: object) -> str:
        params = {"symbol": "ETHUSDT", "side": side, "orderType": "Market", "qty": qty, **extra}
        return ex.create_order(account, params).order_id

    def fills(order_id: str) -> list[tuple[Decimal, Decimal, Decimal]]:
        return [(e.price, e.qty, e.fee) for e in account.executions if e.order.order_id == order_id]

    def vwap(rows: list[tuple[Decimal, Decimal, Decimal]]) -> Decimal:
        return sum((p * q for p, q, _ in rows), Decimal(0)) / sum(
            (q for _, q, _ in rows), Decimal(0)
        )

    short = market("Sell", "1.00")
    flip = market("Buy", "1.50")
    close = market("Sell", "0.50", reduceOnly=True)
    s_fills, f_fills, c_fills = fills(short), fills(flip), fills(close)
    assert len(f_fills) == 1  # one level: the closed and the opened part share its price
    s_px, f_px, c_px = vwap(s_fills), vwap(f_fills), vwap(c_fills)
    s_fee = sum(f for _, _, f in s_fills)
    f_fee = sum(f for _, _, f in f_fills)
    c_fee = sum(f for _, _, f in c_fills)
    records = account.closed_pnl
    assert list(records) == [flip, close]
    first, second = records[flip], records[close]
    assert first.closed_size == Decimal("1.00") and second.closed_size == Decimal("0.50")
    expected_first = (
        (s_px - f_px) * Decimal("1.00") - s_fee - f_fee * Decimal("1.00") / Decimal("1.50")
    )
    expected_second = (
        (c_px - f_px) * Decimal("0.50") - f_fee * Decimal("0.50") / Decimal("1.50") - c_fee
    )
    assert abs(first.net - expected_first) < Decimal("1e-12")
    assert abs(second.net - expected_second) < Decimal("1e-12")
    assert account.position("ETHUSDT").open_fee == 0  # flat: every opening fee charged
