"""The journal writes every record it is given, in order, and flushes on close."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from scalper.app.journal import Journal, JournalRecord, read_records, run_journal
from scalper.core.model import EngineState, Side


async def test_records_round_trip_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    send, receive = trio.open_memory_channel[JournalRecord](4)
    journal = Journal(send, clock_ms=lambda: 1_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_journal, path, receive)
        # more records than the channel holds: sends wait, nothing is dropped
        for i in range(50):
            await journal.record(
                "fill", symbol="SOLUSDT", order_link_id=f"scalp-{i}", qty=Decimal("0.1"), i=i
            )
        await journal.record("transition", before=EngineState.IDLE, side=Side.BUY)
        await journal.aclose()
    records = list(read_records(path))
    assert [r.data.get("i") for r in records[:50]] == list(range(50))
    assert records[0].order_link_id == "scalp-0"
    assert records[0].data["qty"] == "0.1"
    assert records[-1].kind == "transition"
    assert records[-1].data == {"before": "Idle", "side": "Buy"}
    assert [r.kind for r in read_records(path, kinds=("transition",))] == ["transition"]


async def test_writer_flushes_queued_records_when_cancelled_after_close(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    send, receive = trio.open_memory_channel[JournalRecord](100)
    journal = Journal(send, clock_ms=lambda: 5)
    for i in range(10):
        await journal.record("alert", message=f"m{i}")
    await journal.aclose()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_journal, path, receive)
    assert len(list(read_records(path))) == 10
