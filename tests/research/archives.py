"""Hand-made files in Bybit's archive formats, for the importer's tests.

``book_zip`` and ``trades_gz`` write exactly the shapes of Bybit's published archives
(``research.bybit_archives`` describes them) from plain lists, so each test states the
lines it feeds; ``synthetic_day`` writes a large, valid day quickly (formatted strings,
no simulator) for the memory test.
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

SYM = "XRPUSDT"
TOPIC = f"orderbook.500.{SYM}"
HEADER = (
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
    "foreignNotional"
)
T0 = 1_733_011_200_000


def frame(kind: str, u: int, ts: int, bids: Sequence[Sequence[str]],
          asks: Sequence[Sequence[str]], symbol: str = SYM) -> bytes:  # fmt: skip
    """One archive line (a WebSocket book frame)."""
    return orjson.dumps(
        {
            "topic": f"orderbook.500.{symbol}",
            "type": kind,
            "ts": ts,
            "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 1000 + u},
            "cts": ts - 2,
        }
    )


def book_zip(path: Path, lines: Iterable[bytes], *, cut: int = 0) -> Path:
    """A book archive holding ``lines``; ``cut`` > 0 drops that many bytes off the end."""
    member = path.name.removesuffix(".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as out:
        for line in lines:
            out.write(line + b"\n")
    if cut:
        data = path.read_bytes()
        path.write_bytes(data[:-cut])
    return path


def trade_row(ms: int, side: str, size: str, price: str, tid: str, *, rpi: bool | None = None,
              symbol: str = SYM) -> str:  # fmt: skip
    """One CSV row (``timestamp`` in seconds with four decimals)."""
    row = [f"{ms // 1000}.{ms % 1000:03d}0", symbol, side, size, price, "PlusTick", tid,
           "100", size, "1"]  # fmt: skip
    if rpi is not None:
        row.append("true" if rpi else "false")
    return ",".join(row)


def trades_gz(path: Path, rows: Iterable[str], *, rpi: bool = False) -> Path:
    """A trade dump: the header (with ``,RPI`` when ``rpi``) and ``rows``."""
    with gzip.open(path, "wt", encoding="ascii") as out:
        out.write(HEADER + (",RPI" if rpi else "") + "\n")
        for row in rows:
            out.write(row + "\n")
    return path


def synthetic_day(directory: Path, book_lines: int, trade_rows: int) -> tuple[Path, Path]:
    """A valid, gap-free archive pair of ``book_lines`` book lines (a snapshot every 50k)
    and ``trade_rows`` trades, written fast; prices on a 0.0001 grid around 0.5."""
    book = directory / f"2024-12-01_{SYM}_ob500.data.zip"
    member = book.name.removesuffix(".zip")
    levels = [f"0.{4990 - i:04d}" for i in range(20)], [f"0.{5010 + i:04d}" for i in range(20)]
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as out:
        for n in range(book_lines):
            u = n + 1
            ts = T0 + n * 10
            if n % 50_000 == 0:
                bids: Any = [[p, "1000"] for p in levels[0]]
                asks: Any = [[p, "1000"] for p in levels[1]]
                kind = "snapshot"
            else:
                kind = "delta"
                bids = [[levels[0][n % 20], str(1000 + n % 7)]]
                asks = [[levels[1][(n * 3) % 20], str(900 + n % 5)]]
            out.write(frame(kind, u, ts, bids, asks) + b"\n")
    trades = directory / f"{SYM}2024-12-01.csv.gz"
    step = max(1, book_lines * 10 // max(1, trade_rows))
    with gzip.open(trades, "wt", encoding="ascii") as out:
        out.write(HEADER + ",RPI\n")
        for n in range(trade_rows):
            side = "Buy" if n % 2 else "Sell"
            price = "0.5010" if side == "Buy" else "0.4990"
            out.write(trade_row(T0 + n * step + 1, side, "12", price, f"id{n}", rpi=False) + "\n")
    return book, trades
