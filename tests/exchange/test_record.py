"""``scalper record`` against the simulator over loopback, then the file replayed.

Real sockets: every wait is bounded with ``trio.fail_after`` and polls in 10 ms steps;
no test asserts a duration.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import trio

from scalper.bybit.ws import WsPolicy
from scalper.core.strategy import EngineConfig
from scalper.replay.player import ReplaySummary, replay
from scalper.replay.record import (
    RecordStats,
    SymbolNotListed,
    fetch_instrument,
    record_stream,
    topics_for,
)
from scalper.replay.recording import RecordingHeader, RecordingReader, RecordingWriter
from scalper.sim import SimConfig, open_sim

#: the heartbeat is not what these tests judge, and a pong waits behind every frame
#: queued before it: on a loaded machine (coverage, other jobs) a client a second behind
#: the market is normal, and a tight pong deadline would add disconnects of its own
POLICY = WsPolicy(
    ping_interval_s=0.3,
    pong_timeout_s=5.0,
    connect_timeout_s=2,
    disconnect_timeout_s=0.5,
    backoff_base_s=0.05,
    backoff_max_s=0.3,
    healthy_after_s=2,
)


async def _until(check: Callable[[], bool]) -> None:
    """Poll state that a socket task changes (no event to wait on), bounded."""
    with trio.fail_after(10):
        while not check():  # noqa: ASYNC110 - the recorder exposes counters, not events
            await trio.sleep(0.01)


def _replay_twice(data: bytes) -> tuple[list[str], ReplaySummary]:
    outputs = []
    summaries = []
    for _ in range(2):
        lines: list[str] = []
        reader = RecordingReader(data.splitlines())
        summaries.append(replay(reader, EngineConfig(session_tag="rec1"), emit=lines.append))
        outputs.append(lines)
    assert outputs[0] == outputs[1]
    assert summaries[0] == summaries[1]
    return outputs[0], summaries[0]


async def test_record_command_captures_the_sim_and_the_file_replays(tmp_path: Path) -> None:
    out = tmp_path / "btc.jsonl"
    async with open_sim(SimConfig(seed=5, port=0, symbols=("BTCUSDT", "SOLUSDT"))) as sim:
        argv = [sys.executable, "-m", "scalper.cli", "record", "--symbol", "BTCUSDT"]
        argv += ["--seconds", "1", "--ws-public-url", sim.ws_public_url, "--out", str(out)]
        with trio.fail_after(30):
            result = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False
            )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    match = re.search(rb"captured (\d+) frames", result.stdout)
    assert match, result.stdout
    frames = int(match.group(1))
    assert frames > 0

    data = out.read_bytes()
    reader = RecordingReader(data.splitlines())
    header = reader.header
    assert header.symbol == "BTCUSDT"
    assert header.url == sim.ws_public_url
    assert header.instrument is not None  # read from the sim's instruments-info
    assert header.tick_size == header.instrument.tick_size
    assert header.topics == tuple(topics_for("BTCUSDT"))
    assert abs(header.clock_offset_ms) < 1_000  # measured from the sim's /v5/market/time

    _, summary = _replay_twice(data)
    assert summary.frames == frames
    assert summary.book_messages > 0 and summary.trade_messages > 0
    assert summary.other_symbol_frames == 0
    assert summary.parse_errors == {} and summary.file_errors == {}
    assert summary.book_valid


async def test_recording_keeps_bad_frames_gaps_and_drops_and_replay_resyncs_the_same() -> None:
    # one symbol at 100 steps/s: every step is a BTCUSDT frame, a pace the recorder keeps
    # up with under coverage on a busy machine (at the default 500/s it falls behind, the
    # market holds, and the simulator drops it as a slow consumer)
    async with open_sim(SimConfig(seed=6, port=0, symbols=("BTCUSDT",), rate=100)) as sim:
        instrument = await fetch_instrument(sim.rest_url, "BTCUSDT")
        assert instrument is not None
        buffer = io.BytesIO()
        writer = RecordingWriter(buffer)
        writer.header(
            RecordingHeader(
                symbol="BTCUSDT",
                tick_size=instrument.tick_size,
                url=sim.ws_public_url,
                start_ms=0,
                instrument=instrument,
            )
        )
        book_topic = topics_for("BTCUSDT")[0]
        stop = trio.Event()
        done: list[RecordStats] = []

        async def record() -> None:
            done.append(
                await record_stream(
                    sim.ws_public_url,
                    "BTCUSDT",
                    instrument.tick_size,
                    writer,
                    stop=stop,
                    policy=POLICY,
                )
            )

        def more_frames(n: int) -> Callable[[], bool]:
            target = writer.frames + n
            return lambda: writer.frames >= target

        recs: list[dict[str, object]] = []  # what the recorder wrote, parsed by hand
        read_to = [buffer.getvalue().index(b"\n") + 1]  # the header left out
        broken: list[int] = []  # indexes in recs of frames that are not JSON

        def records() -> list[dict[str, object]]:
            """Parse the lines written since the last call (cheap: polled every 10 ms)."""
            data = buffer.getvalue()
            end = data.rfind(b"\n") + 1
            for line in data[read_to[0] : end].splitlines():
                rec = orjson.loads(line)
                if "frame" in rec:
                    try:
                        orjson.loads(str(rec["frame"]))
                    except orjson.JSONDecodeError:
                        broken.append(len(recs))
                recs.append(rec)
            read_to[0] = max(read_to[0], end)
            return recs

        def book_valid_after_the_broken_frames() -> bool:
            """All three broken frames recorded, and if one of them was a book frame (the
            recorder then resubscribes) the repairing snapshot recorded after it. Only
            then does a delta meet a valid book: one that reaches a book waiting for its
            snapshot is dropped, unchecked, and a fault on it would go unseen."""
            records()
            if len(broken) < 3:
                return False
            marks = [i for i, rec in enumerate(recs) if rec.get("event") == "resubscribed"]
            if not marks:
                return True
            return any(
                '"type":"snapshot"' in frame and book_topic in frame
                for frame in (str(rec.get("frame", "")) for rec in recs[marks[-1] + 1 :])
            )

        def resynced_on_backwards_u() -> bool:
            return any(
                rec.get("event") == "resubscribed"
                and "update id went backwards" in str(rec.get("reason"))
                for rec in records()
            )

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(record)
                await _until(more_frames(20))
                sim.inject({"kind": "malformed_ws", "count": 3, "variant": "json"})
                await _until(book_valid_after_the_broken_frames)
                sim.inject({"kind": "out_of_order_ws", "count": 1})
                await _until(resynced_on_backwards_u)
                await _until(more_frames(30))
                sim.inject({"kind": "ws_disconnect", "stream": "public"})
                await _until(lambda: b'"event":"reconnected"' in buffer.getvalue())
                await _until(more_frames(30))
                stop.set()
            (stats,) = done

    assert stats.stop_reason == "interrupted"
    assert stats.parse_errors == {"malformed_json": 3}
    assert stats.resubscribes >= 1
    assert (stats.disconnects, stats.reconnects) == (1, 1)
    data = buffer.getvalue()
    assert data.rstrip().splitlines()[-1].startswith(b'{"t":')  # the "stopped" marker
    assert b'"event":"stopped"' in data.splitlines()[-1]

    lines, summary = _replay_twice(data)
    # the same parser and book over the same bytes find the same faults
    assert summary.frames == stats.frames
    assert summary.parse_errors == stats.parse_errors
    assert summary.resyncs == stats.resubscribes
    assert (summary.disconnects, summary.reconnects) == (1, 1)
    assert summary.book_valid  # repaired by the snapshot after the reconnect
    assert any("update id went backwards" in line for line in lines)
    assert any("stream reconnected" in line for line in lines)


async def test_fetch_instrument_unlisted_symbol_and_unreachable_rest() -> None:
    async with open_sim(SimConfig(seed=1, port=0, symbols=("BTCUSDT",))) as sim:
        with pytest.raises(SymbolNotListed, match="NOPEUSDT"):
            await fetch_instrument(sim.rest_url, "NOPEUSDT")
        port = sim.port
    # the sim is gone: nothing listens on its port any more
    with trio.fail_after(20):
        assert await fetch_instrument(f"http://127.0.0.1:{port}", "BTCUSDT", timeout_s=1) is None
