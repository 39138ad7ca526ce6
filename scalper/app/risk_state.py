"""The daily-loss latch across restarts: journal the engine's ``RiskState``, read it back.

The engine emits ``PersistRiskState`` on every change of the day's realised total or
of its halt latch; the runner writes it to the journal as a ``risk_state`` record. At
start-up the newest such record is read back and handed to ``Engine(restored=...)``,
so a daily-loss halt survives any number of restarts until the next UTC day (the
engine drops a state of another day). ``scalper run --reset-halt`` is the one way to
lift it early: an ``ALERT`` line, a ``halt_reset`` record saying who lifted it, where
and when, and a fresh ``risk_state`` record (so the next start without the flag does
not restore the old latch).
"""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from ..core.model import RiskState
from .journal import Journal, read_records

__all__ = ["lift_halt", "read_risk_state", "risk_state_data"]


def risk_state_data(state: RiskState) -> dict[str, Any]:
    """A ``RiskState`` as journal data: its fields by name."""
    return dict(attrs.asdict(state, recurse=False))


def _from_data(data: dict[str, Any]) -> RiskState:
    reason = data.get("halt_reason")
    return RiskState(
        day=int(data["day"]),
        realised_net=Decimal(str(data["realised_net"])),
        booked_order_ids=tuple(str(x) for x in data.get("booked_order_ids", ())),
        halted=bool(data["halted"]),
        halt_reason=None if reason is None else str(reason),
    )


def read_risk_state(path: str) -> RiskState | None:
    """The newest ``risk_state`` record of the journal at ``path``; None if there is none.

    A journal that does not exist yet is a first start. A record that cannot be read
    back is skipped with a warning (the one before it still counts).
    """
    if path == ":memory:" or not Path(path).exists():
        return None
    newest: RiskState | None = None
    for record in read_records(path, ("risk_state",)):
        try:
            newest = _from_data(dict(record.data))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            logger.warning("journal: unreadable risk_state record at {}: {}", record.ts_ms, exc)
    return newest


async def lift_halt(journal: Journal, state: RiskState | None, now_ms: int) -> RiskState | None:
    """``--reset-halt``: journal who lifted the latch and return the state to start from.

    The day's realised total restarts at zero (the limit counts from the reset), the
    closes already booked stay booked (so their closed-PnL rows are not counted again).
    """
    user, host = getpass.getuser(), socket.gethostname()
    when = datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(timespec="seconds")
    was = "halted" if state is not None and state.halted else "not halted"
    reason = state.halt_reason if state is not None else None
    logger.warning(
        "ALERT: --reset-halt: the daily-loss latch is lifted by {} on {} at {} (it was {}{}); "
        "the day's realised PnL counts from zero again",
        user,
        host,
        when,
        was,
        f": {reason}" if reason else "",
    )
    await journal.record(
        "halt_reset",
        user=user,
        host=host,
        utc=when,
        was_halted=state is not None and state.halted,
        halt_reason=reason,
    )
    day = now_ms // 86_400_000
    booked = state.booked_order_ids if state is not None and state.day == day else ()
    lifted = RiskState(
        day=day, realised_net=Decimal(0), booked_order_ids=booked, halted=False, halt_reason=None
    )
    await journal.record("risk_state", **risk_state_data(lifted))
    return lifted
