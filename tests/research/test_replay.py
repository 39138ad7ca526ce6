"""Record/replay, sans-IO: files built here from synthetic Bybit frames, replayed in-process.

The frames follow the documented ``orderbook.50`` / ``publicTrade`` shapes; times are
data, so nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import orjson
import pytest

from scalper.cli import main
from scalper.core.model import (
    EngineState,
)
from scalper.core.strategy import EngineConfig
from scalper.replay.player import Replayer, ReplaySummary, play, replay
from scalper.replay.recording import (
    EventRecord,
    FrameRecord,
    RecordingError,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
)
from tests.unit._engine_helpers import instrument

D = Decimal
SYM = "SOLUSDT"
T0 = 1_700_000_000_000


# ---------------------------------------------------------------- frame builders


def book_frame(
    kind: str, u: int, ts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> str:
    return orjson.dumps(
        {
            "topic": f"orderbook.50.{SYM}",
            "type": kind,
            "ts": ts,
            "data": {
                "s": SYM,
                "b": [list(level) for level in bids],
                "a": [list(level) for level in asks],
                "u": u,
                "seq": 1000 + u,
            },
            "cts": ts,
        }
    ).decode()


def trade_frame(ts: int, price: str, side: str = "Buy", qty: str = "1.0") -> str:
    row = {"T": ts, "s": SYM, "S": side, "v": qty, "p": price, "L": "PlusTick", "i": f"t{ts}"}
    return orjson.dumps(
        {"topic": f"publicTrade.{SYM}", "type": "snapshot", "ts": ts, "data": [row]}
    ).decode()


def snapshot(u: int, ts: int, bid: str, ask: str, size: str = "500") -> str:
    return book_frame("snapshot", u, ts, [(bid, size)], [(ask, size)])


def header(**kw: Any) -> RecordingHeader:
    base: dict[str, Any] = {
        "symbol": SYM,
        "tick_size": D("0.01"),
        "url": "ws://test/v5/public/linear",
        "start_ms": T0,
        "topics": (f"orderbook.50.{SYM}", f"publicTrade.{SYM}"),
        "instrument": instrument(),
    }
    base.update(kw)
    return RecordingHeader(**base)


def write(records: list[tuple[int, str] | tuple[int, str, str]], **kw: Any) -> bytes:
    """A recording file: the header, then (t, frame) or (t, "event", name) records."""
    out = io.BytesIO()
    writer = RecordingWriter(out)
    writer.header(header(**kw))
    for record in records:
        if len(record) == 3:
            writer.event(record[0], record[2], reason="test")
        else:
            writer.frame(record[0], record[1])
    writer.flush()
    return out.getvalue()


def cfg(**kw: Any) -> EngineConfig:
    base: dict[str, Any] = {
        "session_tag": "rp1",
        "window": 10,
        "min_ticks": 5,
        "momentum_threshold": 0.001,
        "take_profit_pct": 1.0,
        "stop_loss_pct": 0.5,
    }
    base.update(kw)
    return EngineConfig(**base)


def run(data: bytes, **kw: Any) -> tuple[list[str], ReplaySummary]:
    lines: list[str] = []
    summary = replay(RecordingReader(data.splitlines()), cfg(**kw), emit=lines.append)
    return lines, summary


def round_trip(skew: int = 0) -> list[tuple[int, str] | tuple[int, str, str]]:
    """Rising trades in a liquid book (a long, market entry), then the book jumps 2 %
    (take-profit, market close). ``skew``: how far the exchange's ``ts`` lags the
    local receive time (a local clock running fast)."""
    recs: list[tuple[int, str] | tuple[int, str, str]] = [
        (T0, snapshot(1, T0 - skew, "100.00", "100.01"))
    ]
    t = T0
    for i in range(8):
        t += 50
        recs.append((t, trade_frame(t - skew, f"{100 + i * 0.05:.2f}")))
        recs.append((t + 1, book_frame("delta", 2 + i, t + 1 - skew, [("100.00", "600")], [])))
    t += 1_000
    recs.append((t, snapshot(20, t - skew, "102.00", "102.01")))
    t += 300
    recs.append((t, book_frame("delta", 21, t - skew, [("102.00", "700")], [])))
    return recs


# ---------------------------------------------------------------- determinism


def test_replay_plays_an_entry_and_an_exit_and_is_deterministic() -> None:
    data = write(round_trip())
    first_lines, first = run(data)
    second_lines, second = run(data)
    assert first_lines == second_lines
    assert first == second
    text = "\n".join(first_lines)
    assert "Idle -> OrderPending: entry signal long" in text
    assert "fill Buy 9.9 @ 100.01 (entry, taker)" in text
    assert "PositionOpen -> ClosingPosition: take-profit hit" in text
    assert "fill Sell 9.9 @ 102.00 (close, taker, realised 19.7010)" in text
    assert "ClosingPosition -> Idle" in text
    assert (first.entries_placed, first.entries_filled) == (1, 1)
    assert (first.exits_placed, first.exits_filled) == (1, 1)
    assert first.realised_pnl == D("19.701")  # (102.00 - 100.01) * 9.9
    assert first.final_state == EngineState.IDLE.value
    assert first.position == "flat"
    assert first.book_valid and first.resyncs == 0
    assert first.frames == len(round_trip())


def test_engine_clock_is_receive_time_plus_the_recorded_exchange_offset() -> None:
    """Exchange timestamps 1 s behind the local clock: stale to a replay that ignored
    the offset, fresh (as they were to the live bot, whose clock is local + offset)."""
    skewed = round_trip(skew=1_000)
    _, ignored = run(write(skewed))
    assert ignored.entries_placed == 0  # every book looked 1 s old
    lines, corrected = run(write(skewed, clock_offset_ms=-1_000))
    assert (corrected.entries_placed, corrected.exits_filled) == (1, 1)
    assert corrected.realised_pnl == D("19.701")
    assert lines[0].startswith("    +0.300s  Idle -> OrderPending")  # stamps stay local
    assert corrected.clock_offset_ms == -1_000


def test_cli_replay_output_is_identical_run_to_run(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(write(round_trip()))
    outputs = []
    for _ in range(2):
        assert main(["replay", str(path), "--as-fast-as-possible"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "replay summary for SOLUSDT" in outputs[0]
    assert f"records: {len(round_trip())}" in outputs[0]


def test_paced_replay_waits_the_recorded_gaps_divided_by_speed() -> None:
    data = write(
        [
            (T0, snapshot(1, T0, "100.00", "100.01")),
            (T0 + 400, trade_frame(T0 + 400, "100.00")),
            (T0 + 1000, trade_frame(T0 + 1000, "100.01")),
        ]
    )
    clock = [50.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    reader = RecordingReader(data.splitlines())
    player = Replayer(reader.header, cfg())
    play(reader, player, speed=2.0, sleep=sleep, monotonic=lambda: clock[0])
    assert sleeps == pytest.approx([0.2, 0.3])
    assert player.summary().frames == 3


# ---------------------------------------------------------------- bad input


def test_malformed_lines_and_frames_are_counted_and_skipped() -> None:
    good = write(
        [
            (T0, snapshot(1, T0, "100.00", "100.01")),
            (T0 + 10, "{not json"),  # malformed frame
            (T0 + 20, '{"topic":"orderbook.50.SOLUSDT","type":"delta","ts":1}'),  # no data
            (T0 + 30, '{"topic":"kline.1.SOLUSDT","data":[]}'),  # unknown topic
            (T0 + 40, book_frame("delta", 2, T0 + 40, [("100.00", "7")], [])),
        ]
    )
    lines = good.splitlines()
    junk = [
        b"garbage that is not json",
        b"[1, 2, 3]",
        b'{"frame": "no time"}',
        b'{"t": 5, "neither": "frame nor event"}',
        b'{"t": ' + str(T0 + 50).encode() + b', "event": "solar-flare"}',
    ]
    torn = lines[-1][: len(lines[-1]) // 2]
    data = b"\n".join([*lines[:3], *junk, *lines[3:], b"", torn]) + b"\n"
    out, summary = run(data)
    assert summary.file_errors == {"bad_line": 3, "bad_record": 2, "unknown_event": 1}
    assert summary.parse_errors == {"malformed_json": 1, "missing_field": 1, "unknown_topic": 1}
    assert summary.frames == 5
    assert summary.book_messages == 2  # the snapshot and the good delta
    # the unreadable frame of the book topic was a lost change: the book is re-requested
    # (as the live stream does), and stays invalid until a snapshot; other junk is not
    assert not summary.book_valid
    assert summary.book_invalid_reason == "a frame of the book topic could not be parsed"
    assert summary.final_state == EngineState.IDLE.value
    assert len(out) == 1 and "resync" in out[0]


@pytest.mark.parametrize(
    ("first_line", "why"),
    [
        (b"", "empty file"),
        (b"{oops", "not JSON"),
        (b'{"t": 1, "frame": "{}"}', "not a scalper recording"),
        (b'{"format": "scalper-recording", "version": 99, "symbol": "X"}', "version 99"),
        (
            b'{"format": "scalper-recording", "version": 1, "symbol": "SOLUSDT", '
            b'"tick_size": "-1", "url": "", "start_ms": 1}',
            "tick_size must be > 0",
        ),
    ],
)
def test_unreadable_header_is_a_recording_error(first_line: bytes, why: str) -> None:
    with pytest.raises(RecordingError, match=why):
        RecordingReader([first_line] if first_line else [])


def test_cli_replay_of_a_non_recording_exits_2(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("hello\n")
    assert main(["replay", str(path), "--as-fast-as-possible"]) == 2
    assert "not a scalper recording" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2


def test_header_round_trips_with_and_without_instrument() -> None:
    for h in (header(), header(instrument=None)):
        assert RecordingHeader.from_json(orjson.loads(orjson.dumps(h.to_json()))) == h


# ---------------------------------------------------------------- connection markers


def book_valid(player: Replayer) -> bool:
    return player.book.valid  # a call, so that mypy does not narrow across feeds


def reconciled(player: Replayer) -> bool:
    return player.engine.reconciled


def test_reconnect_marker_invalidates_the_book_until_the_next_snapshot() -> None:
    reader = RecordingReader(write([]).splitlines())
    lines: list[str] = []
    player = Replayer(reader.header, cfg(), emit=lines.append, verbose=True)
    player.feed(FrameRecord(T0, snapshot(1, T0, "100.00", "100.01")))
    assert book_valid(player)
    assert reconciled(player)  # the paper exchange answered the start-up read

    player.feed(EventRecord(T0 + 100, "reconnected"))
    assert not book_valid(player)
    # the engine was told to resync, and the paper exchange answered the reads at once
    assert any("resync (public stream reconnected)" in line for line in lines)
    assert reconciled(player)
    player.feed(FrameRecord(T0 + 150, book_frame("delta", 2, T0 + 150, [("100.00", "9")], [])))
    assert not book_valid(player)  # a delta cannot repair it
    assert player.book.best_bid() == (100.0, 500.0)  # and was dropped

    player.feed(FrameRecord(T0 + 200, snapshot(1, T0 + 200, "101.00", "101.01")))
    assert book_valid(player)
    assert player.book.best_bid() == (101.0, 500.0)
    summary = player.summary()
    assert (summary.reconnects, summary.resyncs, summary.book_messages) == (1, 0, 3)
    assert any("stream reconnected" in line for line in lines)


def test_disconnect_marker_stops_entries_until_the_next_snapshot() -> None:
    """A signal while the book is invalid must not enter; after the snapshot it may."""
    recs: list[tuple[int, str] | tuple[int, str, str]] = [(T0, snapshot(1, T0, "100.00", "100.01"))]
    t = T0
    for i in range(4):
        t += 50
        recs.append((t, trade_frame(t, f"{100 + i * 0.05:.2f}")))
    recs.append((t + 10, "event", "disconnected"))
    recs.append((t + 20, "event", "reconnected"))
    for i in range(4, 8):  # the signal is there, the book is not
        t += 50
        recs.append((t, trade_frame(t, f"{100 + i * 0.05:.2f}")))
    lines, summary = run(write(recs))
    assert summary.entries_placed == 0
    assert any("stream dropped (test): book invalid" in line for line in lines)
    assert (summary.disconnects, summary.reconnects) == (1, 1)
    assert not summary.book_valid

    t += 10
    recs.append((t, snapshot(1, t, "100.34", "100.35")))
    recs.append((t + 5, trade_frame(t + 5, "100.40")))
    _, summary = run(write(recs))
    assert summary.book_valid
    assert summary.entries_placed == 1


def test_gap_in_the_stream_counts_a_resync_and_the_next_snapshot_repairs() -> None:
    recs: list[tuple[int, str] | tuple[int, str, str]] = [
        (T0, snapshot(5, T0, "100.00", "100.01")),
        (T0 + 10, book_frame("delta", 4, T0 + 10, [("100.00", "1")], [])),  # u backwards
        (T0 + 20, book_frame("delta", 6, T0 + 20, [("100.00", "2")], [])),  # dropped
        (T0 + 30, snapshot(7, T0 + 30, "100.00", "100.01")),
    ]
    lines, summary = run(write(recs))
    assert summary.resyncs == 1
    assert summary.book_valid
    assert any("book invalid (update id went backwards" in line for line in lines)


# ---------------------------------------------------------------- fills (replay.venue)


def test_unfilled_post_only_entry_is_cancelled_at_the_confirmation_timeout() -> None:
    """A thin book (top sizes 50) takes a PostOnly entry; the market never trades
    through it, and the timer ticks between records expire it after 10 s."""
    recs: list[tuple[int, str] | tuple[int, str, str]] = [
        (T0, snapshot(1, T0, "100.00", "100.01", size="50"))
    ]
    t = T0
    for i in range(8):
        t += 50
        recs.append((t, trade_frame(t, f"{100 + i * 0.05:.2f}")))
        recs.append((t + 1, book_frame("delta", 2 + i, t + 1, [("100.00", "60")], [])))
    entry_t = t
    t += 12_000  # silence, then one more book frame
    recs.append((t, book_frame("delta", 30, t, [("99.99", "5")], [])))
    lines, summary = run(write(recs), position_usd=D(500))
    text = "\n".join(lines)
    assert "entry signal long" in text and "limit @ 100.00" in text
    assert "not filled within 10s: cancelled" in text
    assert "OrderPending -> Idle: entry order failed" in text
    cancelled_at = next(line for line in lines if "not filled within" in line)
    # expired by a tick between the records, 10 s after the entry (ticks every 250 ms)
    offset = float(cancelled_at.split("s", 1)[0])
    assert (entry_t - T0) / 1000 + 10 <= offset <= (entry_t - T0) / 1000 + 10.25
    assert (summary.entries_placed, summary.entries_filled) == (1, 0)
    assert summary.position == "flat"


def test_record_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--symbol", "BTCUSDT", "--seconds", "0"]) == 2
    assert "--seconds" in capsys.readouterr().err
    assert main(["record", "--symbol", "BTCUSDT", "--tick-size", "abc"]) == 2
    assert "--tick-size" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ws", "rest"),
    [
        ("wss://stream.bybit.com/v5/public/linear", "https://api.bybit.com"),
        ("wss://stream-testnet.bybit.com/v5/public/linear", "https://api-testnet.bybit.com"),
        ("ws://127.0.0.1:8765/v5/public/linear", "http://127.0.0.1:8765"),
        ("wss://proxy.example:9443/v5/public/linear", "https://proxy.example:9443"),
    ],
)
def test_rest_url_is_derived_from_the_stream_url(ws: str, rest: str) -> None:
    from scalper.replay.cli import _rest_for_ws

    assert _rest_for_ws(ws) == rest
