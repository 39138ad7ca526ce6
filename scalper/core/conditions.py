"""The engine's orthogonal conditions: facts that hold across its states.

The five states (``EngineState``) say what the engine does with its one order and its
position; these say what else holds meanwhile, each in one named object rather than
loose flags: what must be read from the exchange before the next entry (reconciling),
what an operator asked (pause, flatten), why it halted (and whether the daily-loss
latch is set), and how the current exit goes.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .model import Side

__all__ = ["Exiting", "Halting", "Operator", "Reads"]


@attrs.define
class Reads:
    """Reconciling: the exchange reads an entry waits for.

    Start-up is a resync: nothing is trusted until the exchange was read.
    """

    #: a position read is needed (start-up, a Resync, a switch)
    position_needed: bool = True
    #: an open-orders read is needed
    orders_needed: bool = True
    #: an entry ended unclear (nothing filled, as far as was read): a position read first
    entry_read_pending: bool = False
    #: a position read after the last order ended showed flat on the current symbol
    flat_confirmed: bool = False

    @property
    def reconciled(self) -> bool:
        return not (self.position_needed or self.orders_needed)

    def resync(self) -> None:
        self.position_needed = self.orders_needed = True


@attrs.define
class Operator:
    """What a human asked (tty, HTTP, Telegram): pause is a flag, not a state."""

    #: who paused (None = not paused); a flatten pauses too
    paused_by: str | None = None
    #: who asked to flatten (None once flat, or after a resume)
    flatten_by: str | None = None


@attrs.define
class Halting:
    """Why the engine is halted, and the daily-loss latch (persisted across restarts)."""

    #: why the engine halted (None while not halted)
    reason: str | None = None
    #: the daily-loss latch; a Halt event does not set it, the day's end lifts it
    loss_latch: bool = False
    latch_reason: str | None = None


@attrs.define
class Exiting:
    """The exit of the open position: why, when to retry a failed close, any extra size."""

    #: why the position is being closed (None: no exit decided)
    reason: str | None = None
    #: a failed close is retried at this time
    retry_at: int | None = None
    #: a read during the close showed more than it was placed for: (side, size, entry)
    extra: tuple[Side, Decimal, Decimal] | None = None

    def rearm(self) -> None:
        """Decide the exit afresh, at once (a new reason to close arrived)."""
        self.reason = None
        self.retry_at = None
