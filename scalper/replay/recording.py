"""The recording file: JSON lines of raw public frames with their local receive time.

One recording is one symbol's ``orderbook.50`` and ``publicTrade`` stream::

    {"format": "scalper-recording", "version": 1, "symbol": "BTCUSDT", "tick_size": "0.1",
     "instrument": {...} | null, "url": "wss://...", "start_ms": 1700000000000,
     "topics": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"], "clock_offset_ms": -12}
    {"t": 1700000000123, "frame": "<the frame exactly as received>"}
    {"t": 1700000000400, "event": "disconnected", "reason": "..."}
    {"t": 1700000000950, "event": "reconnected", "count": 2}
    {"t": 1700000001000, "event": "resubscribed", "reason": "crossed book: ..."}
    {"t": 1700000060000, "event": "stopped", "frames": 2971, "reason": "duration"}

A recording made by ``scalper import-bybit`` from Bybit's archives has the same shape
(its ``url`` says ``bybit-archive:<files>``, its book topic is the archive's, e.g.
``orderbook.500.BTCUSDT``) and two more markers: ``gap`` where the archive lost lines (an
unreadable book line, a ``u`` that skips: the replay invalidates its book and counts a
resync) and ``reset`` before a snapshot whose ``u`` does not increase (the archive's
snapshots replace the book whatever their ``u``)::

    {"t": 1733011260000, "event": "gap", "reason": "u=1500 after 1497"}

Why raw text rather than parsed data: replay must run the *same* parser, book and
engine as the bot, so the file holds what the socket delivered, byte for byte (a
binary frame is decoded as UTF-8, undecodable bytes replaced). ``t`` is the local wall
clock in epoch ms at receipt. The bot's engine runs on that clock corrected by the
exchange's (``BybitRest.now_ms``: local + offset from ``/v5/market/time``), so the header
keeps the offset measured at record time and replay uses ``t + clock_offset_ms`` as
``now_ms``: staleness rules compare it with the exchange's ``ts`` as they did live.

Reading is forgiving: a recording cut by ``kill -9`` ends with half a line, and a
hand-edited one may hold junk. Lines that cannot be read are counted per kind in
``RecordingReader.errors`` and skipped; only a missing or unreadable header (which
says what the file is) is fatal: ``RecordingError``.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final, cast

import attrs
import orjson

from scalper.core.model import Instrument

__all__ = [
    "FORMAT",
    "VERSION",
    "EventRecord",
    "FrameRecord",
    "Record",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
    "open_recording",
]

FORMAT: Final = "scalper-recording"
VERSION: Final = 1

#: Kinds of unreadable line counted by ``RecordingReader``.
BAD_LINE: Final = "bad_line"  #: not JSON, or not a JSON object (e.g. a torn last line)
BAD_RECORD: Final = "bad_record"  #: JSON object without a usable ``t`` and frame/event

_INSTRUMENT_FIELDS: Final = (
    "tick_size",
    "qty_step",
    "min_qty",
    "max_qty",
    "max_mkt_qty",
    "min_notional",
)


class RecordingError(Exception):
    """The file is not a readable scalper recording (missing or bad header)."""


@attrs.frozen(kw_only=True)
class RecordingHeader:
    """What was recorded, where from, and the price grid needed to rebuild the book.

    ``instrument`` holds the full trading rules when instruments-info was reachable at
    record time; replay needs them to size orders exactly as the bot would.
    """

    symbol: str
    tick_size: Decimal
    url: str
    start_ms: int
    topics: tuple[str, ...] = ()
    instrument: Instrument | None = None
    #: exchange clock minus local clock at record time, ms (0 when it was not measured)
    clock_offset_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        """The header line's object."""
        instrument = None
        if self.instrument is not None:
            instrument = {f: str(getattr(self.instrument, f)) for f in _INSTRUMENT_FIELDS}
        return {
            "format": FORMAT,
            "version": VERSION,
            "symbol": self.symbol,
            "tick_size": str(self.tick_size),
            "instrument": instrument,
            "url": self.url,
            "start_ms": self.start_ms,
            "topics": list(self.topics),
            "clock_offset_ms": self.clock_offset_ms,
        }

    @classmethod
    def from_json(cls, obj: object) -> RecordingHeader:
        """Read a header object; ``RecordingError`` naming what is wrong."""
        if type(obj) is not dict or obj.get("format") != FORMAT:
            raise RecordingError(f"not a scalper recording (first line has no format={FORMAT!r})")
        version = obj.get("version")
        if type(version) is not int or not 1 <= version <= VERSION:
            raise RecordingError(f"unsupported recording version {version!r} (want {VERSION})")
        symbol = obj.get("symbol")
        url = obj.get("url", "")
        start_ms = obj.get("start_ms")
        topics = obj.get("topics", [])
        offset = obj.get("clock_offset_ms", 0)
        if type(symbol) is not str or not symbol:
            raise RecordingError("header: symbol missing")
        if type(start_ms) is not int or type(url) is not str:
            raise RecordingError("header: start_ms/url missing or of the wrong type")
        if type(topics) is not list or not all(type(t) is str for t in topics):
            raise RecordingError("header: topics must be a list of strings")
        if type(offset) is not int:
            raise RecordingError(f"header: clock_offset_ms must be an int, got {offset!r}")
        tick_size = _decimal(obj.get("tick_size"), "tick_size")
        if tick_size <= 0:
            raise RecordingError(f"header: tick_size must be > 0, got {tick_size}")
        instrument = None
        rules = obj.get("instrument")
        if rules is not None:
            if type(rules) is not dict:
                raise RecordingError("header: instrument must be an object or null")
            values = {f: _decimal(rules.get(f), f"instrument.{f}") for f in _INSTRUMENT_FIELDS}
            try:
                instrument = Instrument(symbol=symbol, **values)
            except (TypeError, ValueError) as exc:
                raise RecordingError(f"header: bad instrument rules: {exc}") from exc
        return cls(
            symbol=symbol,
            tick_size=tick_size,
            url=url,
            start_ms=start_ms,
            topics=tuple(topics),
            instrument=instrument,
            clock_offset_ms=offset,
        )


def _decimal(value: object, what: str) -> Decimal:
    if type(value) is not str:
        raise RecordingError(f"header: {what} must be a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RecordingError(f"header: {what}={value!r} is not a number") from None
    if not number.is_finite():
        raise RecordingError(f"header: {what}={value!r} is not finite")
    return number


@attrs.frozen(slots=True)
class FrameRecord:
    """One raw data frame and its local receive time (epoch ms)."""

    t: int
    frame: str


@attrs.frozen(slots=True)
class EventRecord:
    """A connection marker (``disconnected``, ``reconnected``, ``resubscribed``, ``stopped``)."""

    t: int
    event: str
    reason: str = ""


Record = FrameRecord | EventRecord


class RecordingWriter:
    """Appends records to a binary file; flushes at most once a second of recording time.

    Writes are plain buffered writes from the trio loop: a line is ~0.5 KB and the
    buffer absorbs it in microseconds, while a worker-thread hop per frame would cost
    more than the frame itself. The periodic flush bounds what a crash can lose.
    """

    def __init__(self, out: IO[bytes], *, flush_interval_ms: int = 1000) -> None:
        self._out = out
        self._flush_interval_ms = flush_interval_ms
        self._last_flush: int | None = None
        #: data frames written so far
        self.frames = 0

    def header(self, header: RecordingHeader) -> None:
        """Write the header line (first, once)."""
        self._line(header.to_json())
        self._out.flush()

    def frame(self, t: int, raw: str | bytes) -> None:
        """Record one data frame received at ``t``."""
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        self._line({"t": t, "frame": text})
        self.frames += 1
        self._maybe_flush(t)

    def event(self, t: int, event: str, **fields: object) -> None:
        """Record a connection marker at ``t`` (extra fields such as ``reason``)."""
        self._line({"t": t, "event": event, **fields})
        self._maybe_flush(t)

    def flush(self) -> None:
        """Push everything written so far to the OS."""
        self._out.flush()

    def _line(self, obj: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(obj) + b"\n")

    def _maybe_flush(self, t: int) -> None:
        if self._last_flush is None:
            self._last_flush = t
        elif t - self._last_flush >= self._flush_interval_ms:
            self._out.flush()
            self._last_flush = t


class RecordingReader:
    """Reads a recording from its lines: ``header``, then iterate for records.

    Unreadable lines are skipped and counted in ``errors`` (by kind); the iteration
    itself never raises for bad content.
    """

    def __init__(self, lines: Iterable[bytes | str]) -> None:
        self._lines = iter(lines)
        #: unreadable lines per kind (``bad_line``, ``bad_record``)
        self.errors: Counter[str] = Counter()
        #: lines read (header included, blank lines not)
        self.lines = 0
        self.header = self._read_header()

    def _read_header(self) -> RecordingHeader:
        for line in self._lines:
            if not line.strip():
                continue
            self.lines += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise RecordingError(
                    f"not a scalper recording: first line is not JSON ({exc})"
                ) from exc
            return RecordingHeader.from_json(obj)
        raise RecordingError("empty file: no recording header")

    def __iter__(self) -> Iterator[Record]:
        for line in self._lines:
            if not line.strip():
                continue
            self.lines += 1
            record = self._record(line)
            if record is not None:
                yield record

    def _record(self, line: bytes | str) -> Record | None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.errors[BAD_LINE] += 1
            return None
        if type(obj) is not dict:
            self.errors[BAD_LINE] += 1
            return None
        t = obj.get("t")
        if type(t) is not int:
            self.errors[BAD_RECORD] += 1
            return None
        frame = obj.get("frame")
        if type(frame) is str:
            return FrameRecord(t, frame)
        event = obj.get("event")
        if type(event) is str and event:
            reason = obj.get("reason", "")
            return EventRecord(t, event, reason if type(reason) is str else str(reason))
        self.errors[BAD_RECORD] += 1
        return None


def open_recording(path: str | Path) -> IO[bytes]:
    """A recording file for reading; ``.gz`` (as ``import-bybit`` writes) decompressed as
    it streams, through a C-level buffered reader (GzipFile's own readline is slow)."""
    if str(path).endswith(".gz"):
        return cast(IO[bytes], io.BufferedReader(gzip.GzipFile(path, "rb"), 1 << 20))
    return Path(path).open("rb")
