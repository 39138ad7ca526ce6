"""``scalper import-bybit``: Bybit's published archives -> a recording ``scalper backtest`` plays.

Inputs (reference section 9): order-book archives ``YYYY-MM-DD_SYMBOL_ob500.data.zip`` (a
zip of one text file, one WebSocket frame per line) and trade dumps
``SYMBOLYYYY-MM-DD.csv.gz`` (a header row, ``timestamp`` in seconds with a fraction,
``side`` the taker's, on newer files a trailing ``RPI`` column). Output: the recording
format of ``scalper record`` (``replay.recording``), one file, every book line kept byte
for byte as its frame, the trades turned into ``publicTrade`` frames (consecutive trades
of the same millisecond in one frame, as the stream batches them), all in time order.

Streaming, because a day of ob500 is hundreds of MB unzipped: each zip member is read as
a stream (a zip cut short by a failed download, whose central directory is missing, is
read from its local header until the data stops), each gzip CSV row by row, and the
sources are merged by time with ``heapq.merge`` (a k-way merge holding one line per
source). Memory is bounded by the longest line, whatever the size of the day.

The time of a record (``t``, the engine's clock on replay) is the frame's ``ts`` for book
lines (when the stream published it) and the trade's own time for trades; at equal times
trades go first (a trade at ``T`` precedes the book delta that shows it). A line whose
time goes backwards is kept at the previous time (counted as ``out_of_order``): the file
stays ordered and nothing is lost.

Bad input is counted by kind and reported, never fatal: a line that is not JSON, a
frame of another topic or symbol, a CSV row that does not parse, a file cut short. The
book is checked as it streams with the bot's own rule (``bybit.market.MarketData`` and
its ``invalidate_on_lost_frame``, as ``scalper record`` does): the archive's
periodic snapshots reset it, and where the live stream would resync (a lost book line,
or a ``u`` that skips: Bybit's archives number their lines one by one) a ``gap`` marker
is written, so the replay invalidates its book at the same place and waits for the next
snapshot in the file, where the live bot would wait for its resubscription's.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import heapq
import io
import struct
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final, cast

import attrs
import orjson
from loguru import logger

from scalper.bybit.market import MarketData, invalidate_on_lost_frame
from scalper.bybit.parse import ParseStats
from scalper.core.book import BookStatus
from scalper.core.model import Instrument
from scalper.replay.recording import RecordingHeader, RecordingWriter

__all__ = [
    "ArchiveError",
    "ImportStats",
    "import_archives",
    "main_import",
    "rules_from_flags",
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
#: records between two progress updates
_PROGRESS_EVERY = 20_000


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


# ---------------------------------------------------------------- reading the archives


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


def _book_records(
    paths: Iterable[Path], symbol: str, topic: str, stats: ImportStats
) -> Iterator[tuple[int, int, bytes, Any]]:
    """``(t, 1, line, frame)`` per book line (``frame`` None for a bad line), in file order."""
    last = 0
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
                yield last, 1, line, None
                continue
            ts = obj.get("ts") if type(obj) is dict else None
            data = obj.get("data") if type(obj) is dict else None
            if type(ts) is not int or type(data) is not dict:
                stats.count(
                    BAD_FRAME if type(obj) is dict else BAD_JSON, f"{path.name} line {number}"
                )
                yield last, 1, line, None
                continue
            if obj.get("topic") != topic or data.get("s") != symbol:
                stats.count(OTHER_TOPIC, f"{path.name} line {number}")
                continue
            if ts < last:
                stats.out_of_order += 1
                ts = last
            last = ts
            yield ts, 1, line, obj


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


def _trade_records(
    paths: Iterable[Path], symbol: str, stats: ImportStats
) -> Iterator[tuple[int, int, bytes, Any]]:
    """``(t, 0, frame, None)`` per ``publicTrade`` frame: consecutive trades of one ms."""
    topic = f"publicTrade.{symbol}"
    last = 0
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
            if ms < last:
                stats.out_of_order += 1
                ms = last
            last = ms
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


# ---------------------------------------------------------------- the import


def _first_frame(path: Path) -> tuple[str, str]:
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


def import_archives(
    book_paths: list[Path],
    trade_paths: list[Path],
    out: IO[bytes],
    *,
    tick_size: Decimal | None,
    instrument: Instrument | None,
    source: str = "",
    progress: Callable[[ImportStats], None] | None = None,
) -> ImportStats:
    """Merge the archives into one recording written to ``out``; the counts."""
    if not book_paths:
        raise ArchiveError("--book: at least one order-book archive is needed")
    topics = {_first_frame(p) for p in book_paths}
    if len(topics) > 1:
        found = ", ".join(sorted(t for t, _ in topics))
        raise ArchiveError(f"--book: the archives mix topics or symbols ({found})")
    ((topic, symbol),) = topics
    tick = instrument.tick_size if instrument is not None else tick_size
    if tick is None:
        raise ArchiveError(
            f"tick size of {symbol} unknown: pass --tick-size (or --rest-url of an exchange)"
        )
    stats = ImportStats(symbol=symbol)
    writer = RecordingWriter(out, flush_interval_ms=60_000)
    market = MarketData(ParseStats(name="import"))  # the bot's book rule, applied here
    market.follow(symbol, tick)
    book = market.book
    assert book is not None
    header_written = False
    last_u: int | None = None
    merged = heapq.merge(
        _trade_records(sorted(trade_paths), symbol, stats),
        _book_records(sorted(book_paths), symbol, topic, stats),
        key=lambda r: (r[0], r[1]),
    )
    for t, kind, raw, obj in merged:
        if not header_written:
            header_written = True
            stats.first_ms = t
            writer.header(
                RecordingHeader(
                    symbol=symbol,
                    tick_size=tick,
                    url=source,
                    start_ms=t,
                    topics=(topic, f"publicTrade.{symbol}"),
                    instrument=instrument,
                )
            )
        stats.last_ms = t
        stats.records += 1
        if kind == 0:
            writer.frame(t, raw)
        elif obj is None:  # a lost book line: the book misses a change (the live rule)
            if invalidate_on_lost_frame(book, raw, topic) or book.valid:
                book.invalidate("a line of the book archive could not be read")
                _gap(writer, stats, t, "unreadable book line")
        else:
            last_u = _book_line(writer, stats, market, t, raw, obj, last_u)
        if progress is not None and stats.records % _PROGRESS_EVERY == 0:
            progress(stats)
    if progress is not None:
        progress(stats)
    writer.flush()
    return stats


def _gap(writer: RecordingWriter, stats: ImportStats, t: int, reason: str) -> None:
    stats.resyncs += 1
    writer.event(t, "gap", reason=reason)


def _book_line(
    writer: RecordingWriter,
    stats: ImportStats,
    market: MarketData,
    t: int,
    raw: bytes,
    obj: dict[str, Any],
    last_u: int | None,
) -> int | None:
    """Write one book frame; keep the import's book with the bot's rule; mark gaps."""
    book = market.book
    assert book is not None
    data = obj["data"]
    kind = obj.get("type")
    u = data.get("u")
    bids, asks = data.get("b"), data.get("a")
    if type(u) is not int or type(bids) is not list or type(asks) is not list:
        stats.count(BAD_FRAME, f"record {stats.records}: no u/b/a")
        if book.valid:
            book.invalidate("a book frame without u/b/a")
            _gap(writer, stats, t, "unusable book frame")
        return last_u
    stats.book_frames += 1
    if kind == "snapshot" or u == 1:
        stats.snapshots += 1
        if last_u is not None and u <= last_u and u != 1 and book.valid:
            # an archive's snapshot is a reset (reference section 9) even when its u is not
            # above the last one; the live rule would call it stale, so say it is a reset
            book.invalidate(f"archive snapshot resets u={u} after {last_u}")
            writer.event(t, "reset", reason=f"snapshot u={u} after {last_u}")
    elif last_u is not None and u != last_u + 1 and book.valid:
        # the marker goes first: the replay must not trust the frame after the hole
        stats.gaps += 1
        book.invalidate(f"u gap: u={u} after {last_u}")
        _gap(writer, stats, t, f"u={u} after {last_u}")
    writer.frame(t, raw)
    ts = obj.get("ts")
    status = market.book_message(str(kind), bids, asks, u, ts if type(ts) is int else t)
    if status is BookStatus.INVALIDATED:
        stats.resyncs += 1  # the replay's own book finds this one in the same frame
    return u


# ---------------------------------------------------------------- CLI


def rules_from_flags(
    symbol: str, tick_size: str | None, qty_step: str | None
) -> tuple[Decimal | None, Instrument | None]:
    """``--tick-size``/``--qty-step`` -> (tick, instrument with permissive limits or None)."""

    def number(flag: str, text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ArchiveError(f"{flag}: {text!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ArchiveError(f"{flag}: must be > 0, got {text}")
        return value

    tick = number("--tick-size", tick_size) if tick_size is not None else None
    if qty_step is None:
        return tick, None
    step = number("--qty-step", qty_step)
    if tick is None:
        raise ArchiveError("--qty-step needs --tick-size too")
    big = Decimal(1_000_000_000)
    return tick, Instrument(
        symbol=symbol,
        tick_size=tick,
        qty_step=step,
        min_qty=step,
        max_qty=big,
        max_mkt_qty=big,
        min_notional=Decimal(0),
    )


def _progress_bar(enabled: bool) -> tuple[Callable[[ImportStats], None] | None, Any]:
    """A rich status line on a terminal (records, frames, trades); None when off."""
    if not enabled:
        return None, None
    try:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ModuleNotFoundError:
        return None, None
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    task = bar.add_task("importing", total=None)

    def update(stats: ImportStats) -> None:
        bar.update(
            task,
            description=f"{stats.records:,} records: {stats.book_frames:,} book frames, "
            f"{stats.trades:,} trades, {sum(stats.bad.values())} bad",
        )

    return update, bar


def main_import(args: argparse.Namespace) -> int:
    """Entry point of ``scalper import-bybit``; returns the exit code."""
    books = [Path(p) for p in args.book]
    trades = [Path(p) for p in args.trades]
    for path in [*books, *trades]:
        if not path.is_file():
            sys.stderr.write(f"error: {path}: no such file\n")
            return 2
    try:
        _, symbol = _first_frame(books[0])
        tick, instrument = rules_from_flags(symbol, args.tick_size, args.qty_step)
        if args.rest_url:
            instrument = _fetch_rules(args.rest_url, symbol) or instrument
    except ArchiveError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    show = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    update, bar = _progress_bar(show)
    out_path = Path(args.out)
    source = "bybit-archive:" + ",".join(p.name for p in [*books, *trades])
    try:
        with _open_out(out_path) as out:
            if bar is not None:
                with bar:
                    stats = import_archives(books, trades, out, tick_size=tick,
                                            instrument=instrument, source=source,
                                            progress=update)  # fmt: skip
            else:
                stats = import_archives(
                    books, trades, out, tick_size=tick, instrument=instrument, source=source
                )
    except ArchiveError as exc:
        sys.stderr.write(f"error: {exc}\n")
        out_path.unlink(missing_ok=True)
        return 2
    except OSError as exc:
        sys.stderr.write(f"error: {out_path}: {exc.strerror or exc}\n")
        return 1
    sys.stdout.write(stats.render(str(out_path)))
    return 0


def _open_out(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.GzipFile(path, "wb", mtime=0))
    return path.open("wb")


def _fetch_rules(rest_url: str, symbol: str) -> Instrument | None:
    """The symbol's rules from instruments-info at an explicit URL (None: unreachable)."""
    import trio

    from scalper.replay.record import SymbolNotListed, fetch_instrument

    try:
        return trio.run(fetch_instrument, rest_url, symbol)
    except SymbolNotListed as exc:
        raise ArchiveError(str(exc)) from None
