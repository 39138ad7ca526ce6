"""The journal: an append-only SQLite record of what the bot did and why.

Every state transition, order, fill, position read and alert is written here, so that
after a crash the operator (and ``scalper report``) can see what the bot was doing.
The exchange stays the source of truth; the journal is the bot's memory of *why*.

Writes never block the trading tasks on disk: records go through a lossless memory
channel (awaited sends, never dropped) to one writer task that batches them into a
worker thread. SQLite runs in WAL mode so ``scalper report`` can read while the bot
writes. Records are built from our own types only, so secrets cannot reach them.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio
from loguru import logger

__all__ = ["Journal", "JournalFailed", "JournalRecord", "read_records", "run_journal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL DEFAULT '',
    order_link_id TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, ts_ms);
"""

#: batches bound the time a record waits in memory before it is on disk
_MAX_BATCH = 256


@attrs.frozen(kw_only=True)
class JournalRecord:
    """One journal line: what happened (kind), when, about what, with details."""

    ts_ms: int
    kind: str
    symbol: str = ""
    order_link_id: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {k: _jsonable(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _open(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One writer task owns the connection, but trio's worker threads differ per call.
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def _write_batch(conn: sqlite3.Connection, batch: list[JournalRecord]) -> None:
    rows = [
        (r.ts_ms, r.kind, r.symbol, r.order_link_id, json.dumps(_jsonable(r.data))) for r in batch
    ]
    with conn:
        conn.executemany(
            "INSERT INTO records (ts_ms, kind, symbol, order_link_id, data) VALUES (?,?,?,?,?)",
            rows,
        )


class JournalFailed(Exception):
    """The journal cannot be written (disk full, file gone): the bot must stop, loudly."""


@attrs.define(eq=False)
class Journal:
    """The writing end handed to tasks: ``await journal.record(...)`` never drops."""

    _send: trio.MemorySendChannel[JournalRecord]
    _clock_ms: Callable[[], int]

    async def record(
        self, kind: str, *, symbol: str = "", order_link_id: str = "", **data: Any
    ) -> None:
        """Append one record (awaits when the writer lags: journal lines are never lost).

        Raises ``JournalFailed`` once the writer is gone: a record that cannot be kept
        must stop the bot rather than vanish.
        """
        record = JournalRecord(
            ts_ms=int(self._clock_ms()),
            kind=kind,
            symbol=symbol,
            order_link_id=order_link_id,
            data=data,
        )
        try:
            await self._send.send(record)
        except trio.BrokenResourceError:
            raise JournalFailed(f"journal writer is gone; {kind} record not written") from None

    async def aclose(self) -> None:
        """Close the writing end; the writer flushes what is queued and stops."""
        await self._send.aclose()


async def run_journal(
    path: str,
    receive: trio.MemoryReceiveChannel[JournalRecord],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Writer task: drain ``receive`` into SQLite in batches until the channel closes.

    It stops only when every sender has closed, so a graceful shutdown flushes all.
    """
    conn = await trio.to_thread.run_sync(_open, path)
    task_status.started()
    written = 0
    try:
        async with receive:
            async for first in receive:
                batch = [first]
                while len(batch) < _MAX_BATCH:
                    try:
                        batch.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                # Shielded: a batch taken off the channel must reach the disk.
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_write_batch, conn, batch)
                written += len(batch)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close)
        logger.debug("journal closed: {} records written to {}", written, path)


def read_records(path: str, kinds: tuple[str, ...] = ()) -> Iterator[JournalRecord]:
    """Read records back (oldest first), optionally only some kinds. For reports and tests."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        query = "SELECT ts_ms, kind, symbol, order_link_id, data FROM records"
        params: tuple[str, ...] = ()
        if kinds:
            query += f" WHERE kind IN ({','.join('?' * len(kinds))})"
            params = kinds
        for ts_ms, kind, symbol, link_id, data in conn.execute(query + " ORDER BY id", params):
            yield JournalRecord(
                ts_ms=ts_ms, kind=kind, symbol=symbol, order_link_id=link_id, data=json.loads(data)
            )
    finally:
        conn.close()
