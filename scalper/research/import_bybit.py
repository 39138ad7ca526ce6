"""``scalper import-bybit``: Bybit's published archives -> a recording ``scalper backtest`` plays.

The archives are read by ``research.bybit_archives`` (streamed, bad input counted);
this module merges their records by time with ``heapq.merge`` (a k-way merge holding one
line per source) and writes the recording format of ``scalper record``
(``replay.recording``): one file, every book line kept byte for byte as its frame, the
trades as ``publicTrade`` frames, all in time order.

The time of a record (``t``, the engine's clock on replay) is the frame's ``ts`` for book
lines (when the stream published it) and the trade's own time for trades; at equal times
trades go first (a trade at ``T`` precedes the book delta that shows it). A line whose
time goes backwards is kept at the previous time (counted as ``out_of_order``): the file
stays ordered and nothing is lost.

The book is checked as it streams with the bot's own rule (``bybit.marketdata.MarketData``
and its ``invalidate_on_lost_frame``, as ``scalper record`` does): the archive's
periodic snapshots reset it, and where the live stream would resync (a lost book line,
or a ``u`` that skips: Bybit's archives number their lines one by one) a ``gap`` marker
is written, so the replay invalidates its book at the same place and waits for the next
snapshot in the file, where the live bot would wait for its resubscription's.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, cast

from scalper.bybit.marketdata import MarketData, invalidate_on_lost_frame
from scalper.bybit.parse import ParseStats
from scalper.core.book import BookStatus
from scalper.core.model import Instrument
from scalper.replay.recording import RecordingHeader, RecordingWriter

from .bybit_archives import (
    BAD_FRAME,
    ArchiveError,
    ImportStats,
    book_records,
    first_frame,
    trade_records,
)

__all__ = [
    "ArchiveError",
    "ImportStats",
    "import_archives",
    "main_import",
    "rules_from_flags",
]

#: records between two progress updates
_PROGRESS_EVERY = 20_000


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
    topics = {first_frame(p) for p in book_paths}
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
        trade_records(sorted(trade_paths), symbol, stats),
        book_records(sorted(book_paths), symbol, topic, stats),
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
            # an archive's periodic snapshot is a reset (the book starts over from it)
            # even when its u is not above the last one; the live rule would call it
            # stale, so say it is a reset
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
        _, symbol = first_frame(books[0])
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
                    stats = import_archives(
                        books,
                        trades,
                        out,
                        tick_size=tick,
                        instrument=instrument,
                        source=source,
                        progress=update,
                    )
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
