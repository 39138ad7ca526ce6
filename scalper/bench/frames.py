"""The bench's synthetic Bybit stream and the engine every row feeds it to.

One stream for every row (the frame server replays it too), so the in-process and
the network figures are taken on the same frames: an ``orderbook.50`` snapshot, then
deltas of 1-3 levels and a ``publicTrade`` frame every 5th.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

from ..core.model import Instrument, OpenOrders, PositionSnapshot, SymbolSelected
from ..core.strategy import Engine, EngineConfig

__all__ = ["SYMBOL", "TICK", "bench_engine", "instrument", "make_frames"]

SYMBOL = "SOLUSDT"
TICK = Decimal("0.01")
_MID_TICKS = 15_000  # 150.00


def _dumps(obj: object) -> bytes:
    # Not orjson: its bytes keep a few KiB of capacity each, and a million-frame list
    # would then measure the allocator instead of the memory row's pipeline.
    return json.dumps(obj, separators=(",", ":")).encode()


def make_frames(n: int, seed: int = 7) -> list[bytes]:
    """A snapshot then ``n`` frames: book deltas, and a trade frame every 5th.

    Deltas change 1-3 of the 50 levels a side (a delete only of a level in the book,
    as Bybit's stream does: pybit's book fails on anything else). Book sizes rarely
    repeat, prices do (50 levels around a mid that moves a few ticks).
    """
    rng = random.Random(seed)
    frames = []
    bids = {_MID_TICKS - i: rng.uniform(1, 500) for i in range(1, 51)}
    asks = {_MID_TICKS + i: rng.uniform(1, 500) for i in range(1, 51)}

    def px(ticks: int) -> str:
        return f"{ticks / 100:.2f}"

    def size(value: float) -> str:
        # three decimals: a level's sizes rarely repeat, as on a real book (at one
        # decimal this stream had ~5,000 size strings, which flattered any cache of them)
        return f"{value:.3f}"

    def book_frame(kind: str, b: dict[int, float], a: dict[int, float], u: int) -> bytes:
        data = {
            "s": SYMBOL,
            "b": [[px(p), size(s)] for p, s in sorted(b.items(), reverse=True)],
            "a": [[px(p), size(s)] for p, s in sorted(a.items())],
            "u": u,
            "seq": 1000 + u,
        }
        msg = {
            "topic": f"orderbook.50.{SYMBOL}",
            "type": kind,
            "ts": 1_700_000_000_000 + u,
            "data": data,
            "cts": 1_700_000_000_000 + u,
        }
        return _dumps(msg)

    frames.append(book_frame("snapshot", bids, asks, 1))
    price = _MID_TICKS
    for u in range(2, n + 2):
        if u % 5 == 0:
            price += rng.choice((-3, -1, 0, 1, 3))
            trades = [
                {
                    "T": 1_700_000_000_000 + u,
                    "s": SYMBOL,
                    "S": rng.choice(("Buy", "Sell")),
                    "v": size(rng.uniform(0.1, 20)),  # trade sizes rarely repeat either
                    "p": px(price),
                    "L": "PlusTick",
                    "i": f"t{u}-{k}",
                    "BT": False,
                    "seq": 1000 + u,
                }
                for k in range(rng.randint(1, 3))
            ]
            frames.append(
                _dumps(
                    {
                        "topic": f"publicTrade.{SYMBOL}",
                        "type": "snapshot",
                        "ts": 1_700_000_000_000 + u,
                        "data": trades,
                    }
                )
            )
            continue
        b: dict[int, float] = {}
        a: dict[int, float] = {}
        for _ in range(rng.randint(1, 3)):
            # a consistent stream, as Bybit's is: only levels in the book are deleted
            changes, book, sign = (b, bids, -1) if rng.random() < 0.5 else (a, asks, 1)
            level = _MID_TICKS + sign * rng.randint(1, 50)
            if level in changes:
                continue  # one change per level and frame
            if level in book and len(book) > 10 and rng.random() < 0.2:
                del book[level]
                changes[level] = 0.0
            else:
                book[level] = changes[level] = rng.uniform(1, 500)
        frames.append(book_frame("delta", b, a, u))
    return frames


def instrument() -> Instrument:
    """The rules of the bench symbol (a SOLUSDT-like perpetual)."""
    return Instrument(
        symbol=SYMBOL,
        tick_size=TICK,
        qty_step=Decimal("0.1"),
        min_qty=Decimal("0.1"),
        max_qty=Decimal(10000),
        max_mkt_qty=Decimal(5000),
        min_notional=Decimal(5),
    )


def bench_engine(cls: type[Engine] = Engine) -> Engine:
    """An engine ready to trade ``SYMBOL`` (selected, flat, no open orders)."""
    # stale_ms huge: the loopback rows stamp frames with a monotonic clock, not Bybit's
    engine = cls(EngineConfig(session_tag="bench", stale_ms=10**15))
    engine.handle(SymbolSelected(symbol=SYMBOL, instrument=instrument()), 0)
    engine.handle(PositionSnapshot(symbol=SYMBOL, side=None, size=Decimal(0)), 0)
    engine.handle(OpenOrders(symbol=SYMBOL, order_link_ids=()), 0)
    return engine
