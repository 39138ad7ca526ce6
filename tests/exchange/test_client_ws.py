"""WsConnection / PublicStream / PrivateStream against the simulated exchange.

Real sockets: heartbeat and backoff are shortened, every wait is bounded with
``trio.fail_after``, and no test asserts a duration.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
import trio

from scalper.bybit.rest import BybitRest, Credentials
from scalper.bybit.streams import PublicStream, open_private_stream, open_public_stream
from scalper.bybit.ws import Connected, Disconnected, WsOptions, WsPolicy
from scalper.core.model import (
    BookUpdate,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSnapshot,
    Side,
)
from scalper.sim import Sim, SimConfig, open_sim

KEY, SECRET = "sim-key", "sim-secret"
#: a pong waits behind every frame queued before it: on a loaded machine a client a
#: second behind the market is normal, so only the silence test keeps a tight deadline
#: (there the pong never comes); elsewhere it would add disconnects of its own
POLICY = WsPolicy(
    ping_interval_s=0.3,
    pong_timeout_s=5.0,
    auth_timeout_s=2,
    connect_timeout_s=2,
    disconnect_timeout_s=0.5,
    backoff_base_s=0.05,
    backoff_max_s=0.3,
    healthy_after_s=2,
)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim(SimConfig(seed=1, port=0)) as sim:
        yield sim


async def until(stream: Any, want: Any, limit: int = 10_000) -> Any:
    """The next event for which ``want(event)`` holds (bounded)."""
    for _ in range(limit):
        event = await stream.__anext__()
        if want(event):
            return event
    raise AssertionError("event never came")


async def valid_book(stream: PublicStream) -> BookUpdate:
    ev: BookUpdate = await until(stream, lambda e: isinstance(e, BookUpdate) and e.top.valid)
    return ev


async def assert_book_matches_exchange(stream: PublicStream, rest: BybitRest) -> None:
    """The local book equals the exchange's at the same sequence number.

    Take the REST book (its ``seq``), then apply stream messages until the stream has
    passed that seq; the local levels as of that seq must equal the REST levels.
    """
    await valid_book(stream)
    snap = await rest.orderbook("BTCUSDT", 50)
    by_seq: dict[int, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
    book = stream.book
    assert book is not None
    while True:
        if book.valid:
            by_seq[stream.last_seq] = (book.levels("bid", 50), book.levels("ask", 50))
        if stream.last_seq > snap.seq and any(s <= snap.seq for s in by_seq):
            break
        await stream.__anext__()
    at = max(s for s in by_seq if s <= snap.seq)
    bids, asks = by_seq[at]
    assert len(bids) >= 10 and len(asks) >= 10
    assert bids == [(float(p), float(q)) for p, q in snap.bids]
    assert asks == [(float(p), float(q)) for p, q in snap.asks]


@pytest.fixture
async def rest(sim: Sim) -> AsyncIterator[BybitRest]:
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=2) as client:
        yield BybitRest(client, Credentials(KEY, SECRET))


async def test_public_drop_mid_stream_reconnects_and_book_matches(
    sim: Sim, rest: BybitRest
) -> None:
    with trio.fail_after(30):
        async with open_public_stream(
            sim.ws_public_url,
            "BTCUSDT",
            "0.10",
            options=WsOptions(policy=POLICY, rng=random.Random(1)),
        ) as stream:
            assert await stream.__anext__() == Connected("public", reconnect=False, count=1)
            for _ in range(20):
                await valid_book(stream)
            sim.inject({"kind": "ws_disconnect", "stream": "public"})
            gone = await until(stream, lambda e: isinstance(e, Disconnected))
            assert stream.book is not None and not stream.book.valid
            back = await until(stream, lambda e: isinstance(e, Connected))
            assert back.reconnect and back.count >= 2
            assert stream.conn.topics == ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
            await assert_book_matches_exchange(stream, rest)
            assert gone.reason


async def test_silence_fires_pong_deadline_and_reconnects(sim: Sim) -> None:
    with trio.fail_after(30):
        async with open_public_stream(
            sim.ws_public_url,
            "BTCUSDT",
            "0.10",
            options=WsOptions(policy=attrs.evolve(POLICY, pong_timeout_s=1.0)),
        ) as stream:
            await valid_book(stream)
            sim.inject({"kind": "ws_silence", "count": 1, "stream": "public"})
            gone = await until(stream, lambda e: isinstance(e, Disconnected))
            assert "no pong" in gone.reason
            back = await until(stream, lambda e: isinstance(e, Connected))
            assert back.reconnect
            await valid_book(stream)


async def test_malformed_and_out_of_order_are_counted_and_survived(
    sim: Sim, rest: BybitRest
) -> None:
    with trio.fail_after(30):
        async with open_public_stream(
            sim.ws_public_url, "BTCUSDT", "0.10", options=WsOptions(policy=POLICY)
        ) as stream:
            await valid_book(stream)
            sim.inject({"kind": "malformed_ws", "count": 5, "variant": "json"})
            while stream.stats.errors + stream.conn.control_stats.errors < 5:
                await stream.__anext__()
            sim.inject({"kind": "malformed_ws", "count": 5, "variant": "types"})
            sim.inject({"kind": "out_of_order_ws", "count": 1})
            while stream.resyncs < 1 or stream.stats.errors + stream.conn.control_stats.errors < 10:
                await stream.__anext__()
            assert stream.stats.counts["malformed_json"] >= 1  # truncated frames
            assert stream.stats.counts["wrong_type"] >= 1  # string ts, list data
            assert stream.conn.drops == 0  # handled in-stream: no reconnect needed
            await assert_book_matches_exchange(stream, rest)
    counted = stream.stats.as_dict() | {
        f"control:{k}": v for k, v in stream.conn.control_stats.counts.items()
    }
    assert sum(v for k, v in counted.items() if k != "ignored") >= 10, counted


async def test_private_stream_delivers_order_fill_position_and_survives_drop(
    sim: Sim, rest: BybitRest
) -> None:
    with trio.fail_after(30):
        await rest.sync_clock()
        async with open_private_stream(
            sim.ws_private_url,
            Credentials(KEY, SECRET),
            options=WsOptions(policy=POLICY, clock_ms=rest.now_ms),
        ) as stream:
            assert await stream.__anext__() == Connected("private", reconnect=False, count=1)
            buy = OrderIntent(
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.MARKET,
                qty=Decimal("0.002"),
                order_link_id="ws-buy-1",
            )
            order_id = await rest.place_order(buy)
            filled = await until(
                stream,
                lambda e: (
                    isinstance(e, OrderUpdate)
                    and e.order_link_id == "ws-buy-1"
                    and e.status is OrderStatus.FILLED
                ),
            )
            assert filled.order_id == order_id and filled.cum_exec_qty == Decimal("0.002")
            fill = await until(stream, lambda e: isinstance(e, Fill))
            assert fill.order_id == order_id and fill.price > 0
            pos = await until(stream, lambda e: isinstance(e, PositionSnapshot) and not e.is_flat)
            assert pos.side is Side.BUY and pos.size == Decimal("0.002")

            sim.inject({"kind": "ws_disconnect", "stream": "private"})
            await until(stream, lambda e: isinstance(e, Disconnected))
            back = await until(stream, lambda e: isinstance(e, Connected))
            assert back.reconnect  # re-authenticated and re-subscribed
            close = OrderIntent(
                symbol="BTCUSDT",
                side=Side.SELL,
                order_type=OrderType.MARKET,
                qty=Decimal("0.002"),
                reduce_only=True,
                order_link_id="ws-close-1",
            )
            await rest.place_order(close)
            flat = await until(stream, lambda e: isinstance(e, PositionSnapshot) and e.is_flat)
            assert flat.symbol == "BTCUSDT"
        assert (await rest.position("BTCUSDT")).is_flat
