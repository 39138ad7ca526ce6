"""Archives in Bybit's published formats, made from the simulator's seeded market.

Bybit's history-data files cannot be fetched from here (no network beyond loopback),
and tests and newcomers need something real to import and backtest, so this writes the
same two formats from ``sim.market.Market`` (the market ``scalper run`` trades in the simulator):

* ``YYYY-MM-DD_SYMBOL_ob{depth}.data.zip``: a zip holding one file of that name without
  ``.zip``, one WebSocket frame per line (``orderbook.{depth}.SYMBOL``; a snapshot first and
  every ``snapshot_every_s``, deltas of the changed levels between; ``u`` + 1 per line;
  ``ts`` a few ms after ``cts``, as the stream stamps it);
* ``SYMBOLYYYY-MM-DD.csv.gz``: the trade dump, header
  ``timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,
  foreignNotional`` (``,RPI`` with ``rpi=True``), ``timestamp`` in seconds with four
  decimals, ``side`` the taker's.

The same arguments give the same bytes (the market is seeded; zip entries carry a fixed
date). ``python -m scalper.research.sample DIR`` writes the default pair.
"""

from __future__ import annotations

import gzip
import io
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import orjson

from scalper.sim.market import Market
from scalper.sim.specs import specs_for

__all__ = ["ArchivePair", "write_archives"]

#: 2024-12-01 00:00:00 UTC, the day the sample is stamped with
DAY_MS = 1_733_011_200_000
_TRADE_HEADER = (
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
    "foreignNotional"
)


@attrs.frozen
class ArchivePair:
    """The two files written, and what is in them."""

    book: Path
    trades: Path
    book_lines: int
    trade_rows: int


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _seconds(ms: int) -> str:
    """Bybit's trade timestamp: seconds with a fractional part (four digits)."""
    return f"{ms // 1000}.{ms % 1000:03d}0"


def _steps(
    symbol: str, seconds: float, seed: int, rate: float, start_ms: int
) -> Iterator[tuple[int, Market]]:
    market = Market(specs_for([symbol]), seed=seed, rate=rate)
    step_ms = 1000.0 / rate
    for i in range(int(seconds * rate)):
        yield start_ms + round(i * step_ms), market


def write_archives(
    out_dir: Path,
    *,
    symbol: str = "SOLUSDT",
    seconds: float = 600.0,
    seed: int = 7,
    rate: float = 10.0,
    depth: int = 200,
    snapshot_every_s: float = 300.0,
    start_ms: int = DAY_MS,
    rpi: bool = True,
) -> ArchivePair:
    """Write one book archive and one trade dump of ``seconds`` of the simulated market."""
    out_dir.mkdir(parents=True, exist_ok=True)
    day = _day(start_ms)
    member = f"{day}_{symbol}_ob{depth}.data"
    book_path = out_dir / f"{member}.zip"
    trades_path = out_dir / f"{symbol}{day}.csv.gz"
    topic = f"orderbook.{depth}.{symbol}"
    u = 0
    lines = rows = 0
    next_snapshot = start_ms
    prev_b: dict[int, int] = {}
    prev_a: dict[int, int] = {}
    info = zipfile.ZipInfo(member, date_time=(2024, 12, 2, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(book_path, "w") as zf,
        zf.open(info, "w") as book_out,
        gzip.GzipFile(trades_path, "wb", mtime=0) as gz,
    ):
        trades_out = io.TextIOWrapper(gz, encoding="ascii", newline="\n")
        trades_out.write(_TRADE_HEADER + (",RPI" if rpi else "") + "\n")
        for now, market in _steps(symbol, seconds, seed, rate, start_ms):
            _, trades = market.step(now)
            sm = market.symbols[symbol]
            spec = sm.spec
            ps, qs = spec.price_str, spec.qty_str
            for trade in trades:
                size = trade.lots * spec.qty_step
                price = trade.tick * spec.tick_size
                row = [
                    _seconds(trade.ts),
                    symbol,
                    trade.side,
                    qs(trade.lots),
                    ps(trade.tick),
                    trade.tick_direction,
                    trade.trade_id,
                    str(int(size * price * 100_000_000)),
                    format(size, "f"),
                    format((size * price).normalize(), "f"),
                ]
                if rpi:
                    row.append("false")
                trades_out.write(",".join(row) + "\n")
                rows += 1
            cur_b = dict(sm.book.top_bids(depth))
            cur_a = dict(sm.book.top_asks(depth))
            u += 1
            if now >= next_snapshot:
                next_snapshot = now + round(snapshot_every_s * 1000)
                kind = "snapshot"
                bids = [[ps(t), qs(n)] for t, n in sorted(cur_b.items(), reverse=True)]
                asks = [[ps(t), qs(n)] for t, n in sorted(cur_a.items())]
            else:
                kind = "delta"
                bids = _changes(prev_b, cur_b, ps, qs, reverse=True)
                asks = _changes(prev_a, cur_a, ps, qs, reverse=False)
            prev_b, prev_a = cur_b, cur_a
            frame = {
                "topic": topic,
                "type": kind,
                "ts": now + 3,
                "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": sm.seq},
                "cts": now,
            }
            book_out.write(orjson.dumps(frame) + b"\n")
            lines += 1
        trades_out.flush()
        trades_out.detach()
    return ArchivePair(book=book_path, trades=trades_path, book_lines=lines, trade_rows=rows)


def _changes(
    prev: dict[int, int], cur: dict[int, int], ps: object, qs: object, *, reverse: bool
) -> list[list[str]]:
    assert callable(ps) and callable(qs)
    out: list[tuple[int, str]] = []
    for t, n in cur.items():
        if prev.get(t) != n:
            out.append((t, qs(n)))
    for t in prev:
        if t not in cur:
            out.append((t, "0"))
    out.sort(reverse=reverse)
    return [[ps(t), size] for t, size in out]


def main(argv: list[str] | None = None) -> int:
    """``python -m scalper.research.sample DIR [SECONDS]``: write the default archive pair."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write("usage: python -m scalper.research.sample DIR [SECONDS]\n")
        return 2
    seconds = float(args[1]) if len(args) > 1 else 600.0
    pair = write_archives(Path(args[0]), seconds=seconds)
    sys.stdout.write(
        f"{pair.book} ({pair.book_lines} lines), {pair.trades} ({pair.trade_rows} trades)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
