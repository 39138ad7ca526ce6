"""``scalper import-bybit`` on hand-made archives in Bybit's two formats (book zip, trade CSV).

Each test writes the archive lines it needs, imports them, and reads the recording back
with the replay's own reader, so what is asserted is what ``scalper backtest`` will play.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from scalper.cli import main
from scalper.replay.player import Replayer, play
from scalper.replay.recording import EventRecord, FrameRecord, RecordingReader
from scalper.research.import_bybit import ImportStats, import_archives
from scalper.research.sample import write_archives

from ..unit._engine_helpers import config as engine_config
from .archives import SYM, T0, TOPIC, book_zip, frame, synthetic_day, trade_row, trades_gz

D = Decimal
BIDS = [["0.4999", "100"], ["0.4998", "200"]]
ASKS = [["0.5001", "100"], ["0.5002", "200"]]


def _import(tmp_path: Path, books: list[Path], trades: list[Path]) -> tuple[ImportStats, bytes]:
    out = io.BytesIO()
    stats = import_archives(books, trades, out, tick_size=D("0.0001"), instrument=None)
    return stats, out.getvalue()


def _records(data: bytes) -> tuple[RecordingReader, list[FrameRecord | EventRecord]]:
    reader = RecordingReader(io.BytesIO(data))
    return reader, list(reader)


def _day(tmp_path: Path) -> list[bytes]:
    return [
        frame("snapshot", 1, T0 + 10, BIDS, ASKS),
        frame("delta", 2, T0 + 20, [["0.4999", "150"]], []),
        frame("delta", 3, T0 + 40, [], [["0.5001", "0"]]),
    ]


@pytest.mark.parametrize("rpi", [False, True])
def test_book_and_trades_are_merged_in_time_order_with_the_trades_as_public_trade_frames(
    tmp_path: Path, rpi: bool
) -> None:
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", _day(tmp_path))
    rows = [
        trade_row(T0 + 20, "Sell", "5", "0.4999", "a", rpi=False if rpi else None),
        trade_row(T0 + 20, "Buy", "7", "0.5001", "b", rpi=True if rpi else None),
        trade_row(T0 + 30, "Buy", "1", "0.5001", "c", rpi=False if rpi else None),
    ]
    trades = trades_gz(tmp_path / f"{SYM}2024-12-01.csv.gz", rows, rpi=rpi)
    stats, data = _import(tmp_path, [book], [trades])
    reader, records = _records(data)
    header = reader.header
    assert (header.symbol, header.tick_size, header.start_ms) == (SYM, D("0.0001"), T0 + 10)
    assert header.topics == (TOPIC, f"publicTrade.{SYM}")
    frames = [orjson.loads(r.frame) for r in records if isinstance(r, FrameRecord)]
    assert [(r.t, f["topic"].split(".")[0]) for r, f in zip(records, frames, strict=True)] == [
        (T0 + 10, "orderbook"),
        (T0 + 20, "publicTrade"),  # at equal times the trades go first
        (T0 + 20, "orderbook"),
        (T0 + 30, "publicTrade"),
        (T0 + 40, "orderbook"),
    ]
    # the book lines are kept byte for byte; the two trades of one ms share a frame
    assert records[0].frame.encode() == _day(tmp_path)[0]  # type: ignore[union-attr]
    assert frames[1]["data"] == [
        {"T": T0 + 20, "s": SYM, "S": "Sell", "v": "5", "p": "0.4999", "L": "PlusTick",
         "i": "a", "BT": False, "RPI": False},
        {"T": T0 + 20, "s": SYM, "S": "Buy", "v": "7", "p": "0.5001", "L": "PlusTick",
         "i": "b", "BT": False, "RPI": rpi},
    ]  # fmt: skip
    assert (stats.book_frames, stats.trades, stats.trade_frames) == (3, 3, 2)
    assert (sum(stats.bad.values()), stats.gaps, stats.resyncs) == (0, 0, 0)


def test_a_truncated_last_line_is_counted_and_the_replay_resyncs_there(tmp_path: Path) -> None:
    lines = _day(tmp_path)
    lines.append(lines[1][:-25])  # the download stopped mid-line: a lost delta
    lines.append(frame("snapshot", 5, T0 + 60, BIDS, ASKS))
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", lines)
    stats, data = _import(tmp_path, [book], [])
    assert stats.bad == {"bad_json": 1}
    assert stats.book_frames == 4 and stats.resyncs == 1
    _, records = _records(data)
    assert [r.event for r in records if isinstance(r, EventRecord)] == ["gap"]
    player = Replayer(RecordingReader(io.BytesIO(data)).header, engine_config())
    play(RecordingReader(io.BytesIO(data)), player)
    assert player.resyncs == 1 and player.book.valid  # repaired by the next snapshot
    assert sum(player.stats.counts.values()) == 0  # the bad line is not replayed


def test_a_zip_cut_short_is_read_up_to_where_it_stops(tmp_path: Path) -> None:
    lines = [frame("snapshot", 1, T0, BIDS, ASKS)]
    lines += [frame("delta", u, T0 + u, [["0.4999", str(100 + u)]], []) for u in range(2, 3000)]
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", lines, cut=4000)
    stats, data = _import(tmp_path, [book], [])
    assert stats.bad["truncated_file"] == 1
    assert 1000 < stats.book_frames < 2999  # what was there is read, the rest is reported
    _, records = _records(data)
    times = [r.t for r in records]
    assert times == sorted(times)


def test_an_out_of_order_trade_is_kept_at_the_previous_time_and_counted(tmp_path: Path) -> None:
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", _day(tmp_path))
    rows = [
        trade_row(T0 + 30, "Buy", "1", "0.5001", "a"),
        trade_row(T0 + 15, "Sell", "2", "0.4999", "b"),  # earlier than the row before
        trade_row(T0 + 35, "Buy", "3", "0.5001", "c"),
        "garbage,row",
    ]
    trades = trades_gz(tmp_path / f"{SYM}2024-12-01.csv.gz", rows)
    stats, data = _import(tmp_path, [book], [trades])
    assert stats.out_of_order == 1 and stats.bad == {"bad_row": 1}
    _, records = _records(data)
    times = [r.t for r in records]
    assert times == sorted(times)
    trades_seen = [
        (r.t, item["i"])
        for r in records
        if isinstance(r, FrameRecord) and r.frame.startswith('{"topic":"publicTrade')
        for item in orjson.loads(r.frame)["data"]
    ]
    assert trades_seen == [(T0 + 30, "a"), (T0 + 30, "b"), (T0 + 35, "c")]


def test_a_u_gap_marks_the_book_invalid_until_the_next_snapshot(tmp_path: Path) -> None:
    lines = [
        frame("snapshot", 10, T0, BIDS, ASKS),
        frame("delta", 11, T0 + 10, [["0.4999", "120"]], []),
        frame("delta", 14, T0 + 20, [["0.4999", "130"]], []),  # 12 and 13 are missing
        frame("delta", 15, T0 + 30, [["0.4999", "140"]], []),
        frame("snapshot", 16, T0 + 40, BIDS, ASKS),
        frame("delta", 17, T0 + 50, [["0.4999", "160"]], []),
    ]
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", lines)
    stats, data = _import(tmp_path, [book], [])
    assert (stats.gaps, stats.resyncs, stats.book_frames) == (1, 1, 6)
    _, records = _records(data)
    kinds = [r.event if isinstance(r, EventRecord) else orjson.loads(r.frame)["data"]["u"]
             for r in records]  # fmt: skip
    assert kinds == [10, 11, "gap", 14, 15, 16, 17]  # the marker precedes the frame after it
    reader = RecordingReader(io.BytesIO(data))
    player = Replayer(reader.header, engine_config())
    invalid_at: list[int] = []
    for record in reader:
        player.feed(record)
        if not player.book.valid:
            invalid_at.append(record.t)
    assert invalid_at == [T0 + 20, T0 + 20, T0 + 30]  # marker, u=14, u=15; u=16 repairs
    assert player.resyncs == 1 and player.book.best_bid() == (0.4999, 160.0)


def test_a_gap_free_generated_archive_imports_with_nothing_lost(tmp_path: Path) -> None:
    pair = write_archives(tmp_path, seconds=60, depth=50, snapshot_every_s=20)
    stats, _ = _import_cli(tmp_path, pair.book, pair.trades)
    assert "bad input: none; out of order: 0; u gaps: 0; book resyncs: 0" in stats
    assert f"{pair.book_lines} book frames (3 snapshots) of {pair.book_lines} lines" in stats
    assert f"{pair.trade_rows} trades" in stats


def _import_cli(tmp_path: Path, book: Path, trades: Path) -> tuple[str, Path]:
    out = tmp_path / "out.jsonl.gz"
    buf = io.StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        code = main(["import-bybit", "--book", str(book), "--trades", str(trades),
                     "--tick-size", "0.010", "--qty-step", "0.1", "--out", str(out)])  # fmt: skip
    finally:
        sys.stdout = old
    assert code == 0
    return buf.getvalue(), out


def test_cli_without_a_tick_size_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", _day(tmp_path))
    code = main(["import-bybit", "--book", str(book), "--out", str(tmp_path / "o.jsonl")])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: tick size of {SYM} unknown")


def test_the_shipped_sample_is_what_the_generator_and_the_importer_make(tmp_path: Path) -> None:
    pair = write_archives(tmp_path)
    _, out = _import_cli(tmp_path, pair.book, pair.trades)
    shipped = Path(__file__).parents[1] / "data" / "SOLUSDT-sample.jsonl.gz"
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(shipped.read_bytes())


_MEASURE = textwrap.dedent(
    """
    import io, resource, sys
    from decimal import Decimal
    from pathlib import Path
    from scalper.research.import_bybit import import_archives

    class Sink(io.RawIOBase):
        def writable(self): return True
        def write(self, b): return len(b)

    stats = import_archives([Path(sys.argv[1])], [Path(sys.argv[2])], io.BufferedWriter(Sink()),
                            tick_size=Decimal("0.0001"), instrument=None)
    print(stats.records, stats.book_frames, stats.trades, sum(stats.bad.values()),
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def _peak_kib(book: Path, trades: Path) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(book), str(trades)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [int(x) for x in done.stdout.split()]


def test_a_day_of_a_few_hundred_thousand_lines_streams_in_bounded_memory(tmp_path: Path) -> None:
    small_dir, big_dir = tmp_path / "small", tmp_path / "big"
    small_dir.mkdir()
    big_dir.mkdir()
    small = synthetic_day(small_dir, 1_000, 100)
    big = synthetic_day(big_dir, 200_000, 50_000)
    unzipped = sum(
        len(line) for line in __import__("zipfile").ZipFile(big[0]).open(big[0].stem)
    ) + len(gzip.decompress(big[1].read_bytes()))
    *_, base_kib = _peak_kib(*small)
    records, book_frames, trades, bad, peak_kib = _peak_kib(*big)
    assert (records, book_frames, trades, bad) == (250_000, 200_000, 50_000, 0)
    grown = (peak_kib - base_kib) * 1024
    # a reader that held the day would grow by more than the input itself
    assert grown < unzipped / 4, (grown, unzipped)


def test_two_days_merge_in_order_and_a_snapshot_whose_u_restarts_is_a_reset(
    tmp_path: Path,
) -> None:
    day1 = book_zip(tmp_path / f"2024-12-01_{SYM}_ob500.data.zip", _day(tmp_path))
    day2_lines = [
        frame("snapshot", 2, T0 + 86_400_000, BIDS, ASKS),  # u below day 1's last (3)
        frame("delta", 3, T0 + 86_400_010, [["0.4999", "170"]], []),
    ]
    day2 = book_zip(tmp_path / f"2024-12-02_{SYM}_ob500.data.zip", day2_lines)
    trades1 = trades_gz(tmp_path / f"{SYM}2024-12-01.csv.gz", [trade_row(T0 + 25, "Buy", "1",
                        "0.5001", "a")])  # fmt: skip
    trades2 = trades_gz(tmp_path / f"{SYM}2024-12-02.csv.gz", [trade_row(T0 + 86_400_005, "Sell",
                        "1", "0.4999", "b")])  # fmt: skip
    stats, data = _import(tmp_path, [day2, day1], [trades2, trades1])  # any order given
    assert (stats.book_frames, stats.trades, stats.gaps, stats.resyncs) == (5, 2, 0, 0)
    _, records = _records(data)
    times = [r.t for r in records]
    assert times == sorted(times) and times[0] == T0 + 10 and times[-1] == T0 + 86_400_010
    assert [r.event for r in records if isinstance(r, EventRecord)] == ["reset"]
    reader = RecordingReader(io.BytesIO(data))
    player = Replayer(reader.header, engine_config())
    play(reader, player)
    assert player.resyncs == 0 and player.book.valid
    assert player.book.best_bid() == (0.4999, 170.0)


def test_replay_is_the_backtest_paced_its_fills_are_the_backtests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scalper.research.backtest import load_spec, run_backtest

    sample = str(Path(__file__).parents[1] / "data" / "SOLUSDT-sample.jsonl.gz")
    assert main(["replay", sample, "--as-fast-as-possible"]) == 0
    out = capsys.readouterr().out
    fills = [line for line in out.splitlines() if "  fill " in line]
    result = run_backtest(load_spec([sample], []))
    assert len(fills) == result.fills > 0


@pytest.mark.parametrize(
    ("stamp", "ms"),
    [
        ("1733011200.1234", 1_733_011_200_123),
        ("1733011200.5", 1_733_011_200_500),
        ("1733011200", 1_733_011_200_000),
        ("1733011200123", 1_733_011_200_123),  # a dump stamped in ms already
        ("17330x1200", None),
    ],
)
def test_trade_timestamps_are_read_exactly(stamp: str, ms: int | None) -> None:
    from scalper.research.bybit_archives import _ms

    assert _ms(stamp) == ms


def test_rules_come_from_the_instruments_info_of_an_explicit_url(tmp_path: Path) -> None:
    """Against ``scalper exchange`` on loopback (the only network these tools touch)."""
    pair = write_archives(tmp_path, seconds=5, depth=20)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scalper.cli", "exchange", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "listening on http://127.0.0.1:N (...)"
        url = line.split("listening on ")[1].split()[0]
        out = tmp_path / "ruled.jsonl"
        code = main(["import-bybit", "--book", str(pair.book), "--rest-url", url,
                     "--out", str(out)])  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert code == 0
    header = RecordingReader(out.open("rb")).header
    assert header.instrument is not None
    assert (header.tick_size, header.instrument.qty_step, header.instrument.min_notional) == (
        D("0.010"), D("0.1"), D("5")
    )  # fmt: skip


def test_progress_is_reported_while_importing_and_at_the_end(tmp_path: Path) -> None:
    book, trades = synthetic_day(tmp_path, 45_000, 100)
    seen: list[int] = []
    import_archives([book], [trades], io.BytesIO(), tick_size=D("0.0001"), instrument=None,
                    progress=lambda stats: seen.append(stats.records))  # fmt: skip
    assert seen == [20_000, 40_000, 45_100]
