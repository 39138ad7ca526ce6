"""The engine and the venue driven to rest: one input, every command carried out.

A replay feeds the engine one event per input (a frame, a marker, a timer tick); the
engine answers with commands (orders, cancels, position reads), the venue answers
those with events at the same ``now_ms``, and so on until nothing is left, so an
entry, its fill and the stop armed after it play out at the instant they would live.
This module is that loop, apart from the player that turns records into inputs; it
also writes the lines a user reads (transitions, alerts, fills, refusals).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import attrs

from scalper.core.book import OrderBook
from scalper.core.model import (
    Alert,
    CancelOrder,
    Command,
    Event,
    Log,
    OrderFailed,
    PlaceOrder,
    ProtectionFailed,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    Subscribe,
    Transition,
)
from scalper.core.strategy import Engine

from .venue_protocol import Venue

__all__ = ["EngineLoop", "ReplayError"]

#: events handled for one input before the engine/venue loop is declared runaway
_MAX_STEPS: Final = 1_000


class ReplayError(Exception):
    """The replay cannot go on (a runaway engine/venue loop: a bug, not bad data)."""


@attrs.define(eq=False)
class EngineLoop:
    """Runs the engine against the venue until an input has played out. Sans-IO."""

    engine: Engine
    venue: Venue
    #: the replayed book: its valid top is where a market order is priced
    book: OrderBook
    symbol: str
    #: writes one output line stamped at ``t``
    line: Callable[[int, str], None]
    #: also write the engine's log lines
    verbose: bool = False
    #: the last recorded trade price (the venue's fallback price)
    last_price: float | None = None
    entries_placed: int = 0
    exits_placed: int = 0
    fills_shown: int = 0

    def run(self, event: Event, now: int) -> None:
        """Handle ``event`` and everything the venue answers, at ``now``."""
        first = self.engine.handle(event, now)
        if not first:
            return  # most market data: nothing to do (no queue built per frame)
        queue: deque[Event] = deque()
        for command in first:
            self._report(command, now)
        for command in first:
            queue.extend(self._carry_out(command, now))
        steps = 1
        while queue:
            steps += 1
            if steps > _MAX_STEPS:
                raise ReplayError(
                    f"more than {_MAX_STEPS} engine events for one input at t={now}: "
                    "the engine and the venue are looping"
                )
            commands = self.engine.handle(queue.popleft(), now)
            for command in commands:
                self._report(command, now)
            for command in commands:
                queue.extend(self._carry_out(command, now))

    def _report(self, command: Command, t: int) -> None:
        if isinstance(command, Transition):
            self.line(t, f"{command.before.value} -> {command.after.value}: {command.cause}")
        elif isinstance(command, Alert):
            self.line(t, f"ALERT {command.message}")
        elif isinstance(command, Log) and self.verbose:
            self.line(t, f"[{command.level}] {command.message}")

    def _carry_out(self, command: Command, t: int) -> list[Event]:
        venue = self.venue
        if isinstance(command, PlaceOrder):
            intent = command.intent
            if intent.reduce_only:
                self.exits_placed += 1
            else:
                self.entries_placed += 1
            top = self.book.top()
            events = venue.place(intent, t, top if top and top.valid else None, self.last_price)
            self.fill_lines(t)
            for event in events:
                if isinstance(event, OrderFailed):
                    self.line(t, f"order {intent.order_link_id} failed: {event.reason}")
            return events
        if isinstance(command, CancelOrder):
            events = venue.cancel(command.order_link_id)
            if events:
                self.line(t, f"order {command.order_link_id} cancelled")
            return events
        if isinstance(command, RequestPosition):
            return venue.snapshot_events(command.symbol)
        if isinstance(command, ProtectPosition):
            events = venue.protect(command.symbol, command.stop_loss, command.trigger_by)
            for event in events:
                if isinstance(event, ProtectionFailed):
                    self.line(t, f"exchange stop {command.stop_loss} refused: {event.reason}")
            return events
        if isinstance(command, RequestClosedPnl):
            return venue.closed_pnl(command.symbol)
        # PersistRiskState: nothing to journal in a replay; Log/Alert/Transition reported
        if isinstance(command, Subscribe) and command.symbol != self.symbol:
            self.line(t, f"engine asked for {command.symbol}: not in this recording")
        return []

    def fill_lines(self, t: int) -> None:
        """Print the fills made since the last call."""
        fills = self.venue.fills
        if len(fills) == self.fills_shown:
            return
        new, self.fills_shown = fills[self.fills_shown :], len(fills)
        for fill in new:
            kind = "close" if fill.reduce_only else "entry"
            pnl = f", realised {fill.realised:.4f}" if fill.reduce_only else ""
            self.line(
                t,
                f"fill {fill.side.value} {fill.qty} @ {fill.price} "
                f"({kind}, {'maker' if fill.maker else 'taker'}{pnl})",
            )
