"""The engine's transition table as data, what a handler returns, and the docs.

A ``Row`` says, for one (state, event type), which handler runs, what it does, and
which states it may leave the engine in (besides staying). ``core.engine`` builds the
table from typed rows (``on``: mypy checks that a handler takes the row's event type)
and checks each move against its row; ``render`` prints it, so ``docs/engine.md`` is
generated from the code (``python -m scalper.core.table``; a test keeps it equal).

A handler never changes the state itself: it returns a ``Step``, ``STAY`` or a
``Move`` (next state and cause). The engine checks the move against the row, makes
it (one place reports every ``Transition``) and then runs the move's ``then``: what
the handler does once in the new state, which may move again (an entry that fills
and at once hits its stop goes OrderPending -> PositionOpen -> ClosingPosition).
``and_then`` puts one step after another, so a handler reads in the order it acts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from .model import Command, EngineState

__all__ = ["STAY", "Move", "Row", "Step", "and_then", "on", "render"]

E = TypeVar("E")
M = TypeVar("M")


@attrs.frozen
class Move:
    """Go to ``to`` because of ``cause``; then run ``then`` (in the new state)."""

    to: EngineState
    #: why, as the ``Transition`` (and the log and journal) say it
    cause: str
    #: what the handler does once there; its own step may move on
    then: Callable[[], Step] | None = attrs.field(default=None, eq=False)


#: what a handler (or a step of one) returns: a move, or ``STAY`` (None)
Step: TypeAlias = Move | None
#: stay in the current state
STAY: Final = None


def and_then(step: Step, rest: Callable[[], Step]) -> Step:
    """``step`` (its move and all that follows it), and after it ``rest``."""
    if step is None:
        return rest()
    first = step.then
    return attrs.evolve(step, then=lambda: and_then(first() if first else STAY, rest))


@attrs.frozen
class Row:
    """One (state, event type) entry of the table."""

    event: type[Any]
    #: an unbound method of the engine: (engine, event, now_ms, out) -> Step
    handler: Callable[[Any, Any, int, list[Command]], Step]
    #: what the handler does, for the documentation
    what: str
    #: states the handler may move to; staying is always allowed
    to: frozenset[EngineState] = frozenset()


def on(
    event: type[E],
    handler: Callable[[M, E, int, list[Command]], Step],
    what: str,
    *to: EngineState,
) -> Row:
    """A row whose handler mypy checked against the event type."""
    return Row(event=event, handler=handler, what=what, to=frozenset(to))


def render(table: Mapping[EngineState, Mapping[type[Any], Row]]) -> str:
    """The table as Markdown: one section per state, one line per event type."""
    order = list(EngineState)
    lines = [
        "# The engine's transition table",
        "",
        "Generated from `scalper/core/engine.py` by `python -m scalper.core.table`;",
        "a test checks that this file equals the generated text. Each state lists the",
        "events it accepts, the handler that runs, and the states it may move to (it may",
        "always stay). An event type missing from a state's list is refused with",
        "`EngineError`, naming the state and the event, and nothing changes.",
        "",
        "A handler does not change the state: it returns `STAY` or a `Move` (next state",
        "and cause, then what it does there). The engine checks every move against the",
        "row, makes it and reports it as a `Transition` with that cause; one event may",
        "move more than once (an entry that fills past its stop: OrderPending ->",
        "PositionOpen -> ClosingPosition), each move checked.",
        "",
        "Orthogonal conditions hold across the states (`scalper/core/conditions.py`,",
        "`scalper/core/protection.py`): reconciling (position and open orders read since",
        "the last resync or switch), the operator's pause and flatten, the halt reason",
        "and daily-loss latch, the exit in progress, and the exchange-side stop.",
    ]
    for state in order:
        lines += ["", f"## {state.value}", ""]
        lines += ["| event | handler | may move to | what |", "|---|---|---|---|"]
        for event, row in table[state].items():
            to = ", ".join(s.value for s in order if s in row.to and s is not state) or "-"
            name = row.handler.__name__
            lines.append(f"| `{event.__name__}` | `{name}` | {to} | {row.what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised by the docs test through render
    import sys

    from .engine import TABLE

    sys.stdout.write(render(TABLE))
