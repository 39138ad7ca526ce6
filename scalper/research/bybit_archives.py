"""Reading Bybit's published archives as streams of time-stamped records.

Inputs: order-book archives ``YYYY-MM-DD_SYMBOL_ob500.data.zip`` (a zip of one text
file, one WebSocket frame per line) and trade dumps ``SYMBOLYYYY-MM-DD.csv.gz`` (a
header row, ``timestamp`` in seconds with a fraction, ``side`` the taker's, on newer
files a trailing ``RPI`` column). ``book_records`` and ``trade_records`` turn them into
``(t, kind, bytes, frame)`` records (kind 0: a ``publicTrade`` frame made of the
consecutive trades of one millisecond, as the stream batches them; kind 1: a book line
kept byte for byte), each source in time order, ready for a k-way merge.

Streaming, because a day of ob500 is hundreds of MB unzipped: each zip member is read as
a stream (a zip cut short by a failed download, whose central directory is missing, is
read from its local header until the data stops), each gzip CSV row by row. Memory is
bounded by the longest line, whatever the size of the day.

Bad input is counted by kind in ``ImportStats`` and never fatal: a line that is not
JSON, a frame of another topic or symbol, a CSV row that does not parse, a file cut
short. Kept apart from ``research.import_bybit`` (which merges the records, checks the
book and writes the recording) because reading Bybit's file formats is a job of its own.
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
from loguru import logger

__all__ = [
    "BAD_FRAME",
    "BAD_JSON",
    "BAD_ROW",
    "OTHER_SYMBOL",
    "OTHER_TOPIC",
    "TRUNCATED",
    "ArchiveError",
    "ImportStats",
    "book_records",
    "first_frame",
    "trade_records",
]

#: kinds of bad input counted in ``ImportStats.bad``
BAD_JSON: Final = "bad_json"  #: a book line that is not a JSON object (e.g. cut short)
BAD_FRAME: Final = "bad_frame"  #: a JSON book line without the frame's fields
OTHER_TOPIC: Final = "other_topic"  #: a book line of another topic or symbol
BAD_ROW: Final = "bad_row"  #: a CSV row that does not parse
OTHER_SYMBOL: Final = "other_symbol"  #: a trade row of another symbol
TRUNCATED: Final = "truncated_file"  #: an archive that ends before its end (cut download)

_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_TRADE_FIELDS = ("timestamp", "symbol", "side", "size", "price")
#: bad inputs of one kind logged (the rest only counted)
_LOGGED_PER_KIND = 3


class ArchiveError(Exception):
    """The import cannot start (no rules, unreadable first line, mixed symbols)."""


@attrs.define
class ImportStats:
    """What an import read and wrote (printed at the end, checked by tests)."""

    symbol: str = ""
    book_lines: int = 0
    book_frames: int = 0
    snapshots: int = 0
    trade_rows: int = 0
    trades: int = 0
    trade_frames: int = 0
    out_of_order: int = 0
    gaps: int = 0
    resyncs: int = 0
    records: int = 0
    first_ms: int = 0
    last_ms: int = 0
    bad: Counter[str] = attrs.field(factory=Counter)

    def count(self, kind: str, where: str) -> None:
        """Count one piece of bad input; the first few of each kind are logged with where."""
        self.bad[kind] += 1
        seen = self.bad[kind]
        if seen <= _LOGGED_PER_KIND:
            more = " (further ones are only counted)" if seen == _LOGGED_PER_KIND else ""
            logger.bind(symbol=self.symbol).warning("import: {} at {}{}", kind, where, more)

    def render(self, out: str) -> str:
        """The summary line(s)."""
        bad = ", ".join(f"{k}={v}" for k, v in sorted(self.bad.items())) or "none"
        hours = (self.last_ms - self.first_ms) / 3_600_000
        return (
            f"imported {self.symbol} to {out}: {self.book_frames} book frames "
            f"({self.snapshots} snapshots) of {self.book_lines} lines, {self.trades} trades "
            f"in {self.trade_frames} frames of {self.trade_rows} rows, {hours:.2f} h\n"
            f"  bad input: {bad}; out of order: {self.out_of_order}; "
            f"u gaps: {self.gaps}; book resyncs: {self.resyncs}\n"
        )


@attrs.define
class _Monotonic:
    """The time of one source's records, never going backwards: a record earlier than
    the one before is kept at the previous time (counted as ``out_of_order``), so the
    merged file stays ordered and nothing is lost."""

    stats: ImportStats
    last: int = 0

    def keep(self, t: int) -> int:
        if t < self.last:
            self.stats.out_of_order += 1
            return self.last
        self.last = t
        return t


def _zip_lines(path: Path, stats: ImportStats) -> Iterator[bytes]:
    """The lines of the one member of a book archive, streamed (never the whole file)."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        yield from _local_lines(path, stats)  # no central directory: a cut download
        return
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if not names:
            return
        try:
            with zf.open(names[0]) as member:
                yield from member
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            stats.count(TRUNCATED, f"{path}: {exc}")


def _local_lines(path: Path, stats: ImportStats) -> Iterator[bytes]:
    """Lines of the first member read from its local header (deflate or stored)."""
    with path.open("rb") as fh:
        head = fh.read(_LOCAL_HEADER.size)
        if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            stats.count(TRUNCATED, f"{path}: not a zip archive")
            return
        fields = _LOCAL_HEADER.unpack(head)
        method, name_len, extra_len = fields[3], fields[9], fields[10]
        fh.seek(name_len + extra_len, io.SEEK_CUR)
        inflate = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        rest = b""
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            try:
                data = inflate.decompress(chunk) if inflate is not None else chunk
            except zlib.error:
                break
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from (line + b"\n" for line in lines)
            if inflate is not None and inflate.eof:
                break
        if rest:
            yield rest
        if inflate is None or not inflate.eof:
            stats.count(TRUNCATED, f"{path}: the archive ends before its end")


def book_records(
    paths: Iterable[Path], symbol: str, topic: str, stats: ImportStats
) -> Iterator[tuple[int, int, bytes, Any]]:
    """``(t, 1, line, frame)`` per book line (``frame`` None for a bad line), in file order."""
    clock = _Monotonic(stats)
    for path in paths:
        for number, raw in enumerate(_zip_lines(path, stats), 1):
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            stats.book_lines += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.count(BAD_JSON, f"{path.name} line {number}")
                yield clock.last, 1, line, None
                continue
            ts = obj.get("ts") if type(obj) is dict else None
            data = obj.get("data") if type(obj) is dict else None
            if type(ts) is not int or type(data) is not dict:
                stats.count(
                    BAD_FRAME if type(obj) is dict else BAD_JSON, f"{path.name} line {number}"
                )
                yield clock.last, 1, line, None
                continue
            if obj.get("topic") != topic or data.get("s") != symbol:
                stats.count(OTHER_TOPIC, f"{path.name} line {number}")
                continue
            yield clock.keep(ts), 1, line, obj


def _ms(stamp: str) -> int | None:
    """Bybit's ``1733011200.1234`` seconds -> epoch ms, exactly (no float rounding)."""
    whole, _, frac = stamp.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    if not frac and len(whole) >= 13:  # already epoch ms (13 digits since 2001)
        return int(whole)
    return int(whole) * 1000 + int((frac + "000")[:3])


def _positive(number: str) -> bool:
    """A CSV number that is finite and > 0."""
    try:
        value = float(number)
    except ValueError:
        return False
    return 0 < value < float("inf")


def _csv_rows(path: Path, stats: ImportStats) -> Iterator[list[str]]:
    """Rows of a gzip CSV, streamed; a file cut short ends the rows (counted)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            yield from csv.reader(fh)
    except (EOFError, OSError, zlib.error, csv.Error) as exc:
        stats.count(TRUNCATED, f"{path}: {exc}")


def trade_records(
    paths: Iterable[Path], symbol: str, stats: ImportStats
) -> Iterator[tuple[int, int, bytes, Any]]:
    """``(t, 0, frame, None)`` per ``publicTrade`` frame: consecutive trades of one ms."""
    topic = f"publicTrade.{symbol}"
    clock = _Monotonic(stats)
    batch: list[dict[str, Any]] = []
    batch_ms = 0

    def frame() -> bytes:
        stats.trade_frames += 1
        return orjson.dumps({"topic": topic, "type": "snapshot", "ts": batch_ms, "data": batch})

    for path in paths:
        rows = _csv_rows(path, stats)
        header = next(rows, None)
        if header is None:
            continue
        columns = {name.strip(): i for i, name in enumerate(header)}
        if not all(name in columns for name in _TRADE_FIELDS):
            stats.count(BAD_ROW, f"{path.name}: not a trade dump header")
            continue
        i_ts, i_sym, i_side, i_size, i_price = (columns[n] for n in _TRADE_FIELDS)
        i_tick = columns.get("tickDirection")
        i_id = columns.get("trdMatchID")
        i_rpi = columns.get("RPI")
        width = len(header)
        for number, row in enumerate(rows, 2):
            if not row:
                continue
            stats.trade_rows += 1
            if len(row) != width:
                stats.count(BAD_ROW, f"{path.name} line {number}")
                continue
            if row[i_sym] != symbol:
                stats.count(OTHER_SYMBOL, f"{path.name} line {number}")
                continue
            side, size, price = row[i_side], row[i_size], row[i_price]
            ms = _ms(row[i_ts])
            if (
                ms is None
                or side not in ("Buy", "Sell")
                or not (_positive(size) and _positive(price))
            ):
                stats.count(BAD_ROW, f"{path.name} line {number}")
                continue
            ms = clock.keep(ms)
            if batch and ms != batch_ms:
                yield batch_ms, 0, frame(), None
                batch = []
            batch_ms = ms
            item: dict[str, Any] = {"T": ms, "s": symbol, "S": side, "v": size, "p": price}
            item["L"] = row[i_tick] if i_tick is not None else ""
            item["i"] = row[i_id] if i_id is not None else ""
            item["BT"] = False
            item["RPI"] = i_rpi is not None and row[i_rpi].strip().lower() in ("true", "1")
            batch.append(item)
            stats.trades += 1
    if batch:
        yield batch_ms, 0, frame(), None


def first_frame(path: Path) -> tuple[str, str]:
    """(topic, symbol) of the first readable line of a book archive."""
    stats = ImportStats()
    for raw in _zip_lines(path, stats):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if type(obj) is dict and type(obj.get("data")) is dict:
            topic, symbol = obj.get("topic"), obj["data"].get("s")
            if type(topic) is str and type(symbol) is str and topic.startswith("orderbook."):
                return topic, symbol
    raise ArchiveError(f"{path}: no order-book frame found (not a Bybit ob archive?)")
