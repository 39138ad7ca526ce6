"""``scalper report``: round trips, PnL and an equity curve from the journal.

The journal's ``fill`` records (one per order outcome with a fill: side, qty, price,
fee) are replayed through a one-way position: a fill that reduces the position
realises PnL against the average entry price, exactly as Bybit's one-way mode does.
The equity curve is the running realised PnL net of fees, drawn as a PNG with no
plotting library (a few dozen lines of zlib and struct beat a heavy dependency).
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from .core.pnl import Fill, Ledger, Report, RoundTrip, build_report

__all__ = [
    "Fill",
    "Ledger",
    "Report",
    "RoundTrip",
    "build_report",
    "main_report",
    "render_png",
]


# ------------------------------------------------------------------ PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def render_png(values: Sequence[float], path: str, *, width: int = 640, height: int = 240) -> None:
    """Draw ``values`` as a line chart (with a zero line) into an RGB PNG at ``path``."""
    white, grey, blue = (255, 255, 255), (200, 200, 200), (30, 90, 200)
    pixels = [[white] * width for _ in range(height)]
    series = list(values) or [0.0]
    low, high = min([*series, 0.0]), max([*series, 0.0])
    span = (high - low) or 1.0

    def y_of(v: float) -> int:
        return round((height - 11) - (v - low) / span * (height - 21)) + 5

    zero = y_of(0.0)
    for x in range(width):
        pixels[zero][x] = grey
    n = len(series)
    prev: tuple[int, int] | None = None
    for i, v in enumerate(series):
        point = (int(i * (width - 1) / max(1, n - 1)), y_of(v))
        if prev is not None:
            _line(pixels, prev, point, blue)
        prev = point
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )
    Path(path).write_bytes(png)


def _line(
    pixels: list[list[tuple[int, int, int]]],
    a: tuple[int, int],
    b: tuple[int, int],
    color: tuple[int, int, int],
) -> None:
    (x0, y0), (x1, y1) = a, b
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    for s in range(steps + 1):
        x = x0 + (x1 - x0) * s // steps
        y = y0 + (y1 - y0) * s // steps
        pixels[y][x] = color


# ------------------------------------------------------------------ CLI


def _fills_from_journal(path: str) -> list[Fill]:
    from .app.journal import read_records

    fills = []
    for record in read_records(path, kinds=("fill",)):
        data = record.data
        fills.append(
            Fill(
                ts_ms=record.ts_ms,
                symbol=record.symbol,
                side=str(data["side"]),
                qty=Decimal(str(data["qty"])),
                price=Decimal(str(data["price"])),
                fee=Decimal(str(data.get("fee", "0"))),
            )
        )
    return fills


def _utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_report(report: Report) -> str:
    """The text ``scalper report`` prints."""
    lines = [
        f"{'closed (UTC)':<19}  {'symbol':<10} {'side':<4} {'qty':>12} "
        f"{'entry':>12} {'exit':>12} {'pnl':>12}"
    ]
    for t in report.trips:
        lines.append(
            f"{_utc(t.closed_ms):<19}  {t.symbol:<10} {t.side:<4} {t.qty:>12} {t.entry:>12.6} "
            f"{t.exit:>12} {t.pnl:>12.6}"
        )
    lines.append(
        f"round trips: {len(report.trips)}  wins: {report.wins}  realised: {report.realised:.6}"
        f"  fees: {report.fees:.6}  net: {report.net:.6}"
    )
    return "\n".join(lines) + "\n"


def main_report(args: argparse.Namespace) -> int:
    """Entry point of ``scalper report``."""
    path = args.journal or "data/journal.sqlite"
    if not Path(path).exists():
        sys.stderr.write(f"error: journal.path: no journal at {path}\n")
        return 2
    report = build_report(_fills_from_journal(path))
    sys.stdout.write(format_report(report))
    if args.png:
        render_png([float(v) for _, v in report.equity], args.png)
        sys.stdout.write(f"equity curve written to {args.png}\n")
    return 0
