"""The engine's table is the documentation, and every row is one the engine obeys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from scalper.core.engine import TABLE, TRANSITIONS, Engine
from scalper.core.model import (
    ClosedPnl,
    Command,
    EngineState,
    Halt,
    OrderFilled,
    PositionSnapshot,
    RiskState,
    Side,
    Transition,
)
from scalper.core.pnl import DayBook
from scalper.core.table import STAY, Move, Step, and_then, render
from tests.unit._engine_helpers import T0, book, holding, ready

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def test_docs_engine_md_is_the_generated_table() -> None:
    assert DOC.read_text() == render(TABLE), "regenerate: python -m scalper.core.table"


def test_every_state_has_a_row_per_accepted_event_and_halted_never_leaves() -> None:
    assert set(TABLE) == set(EngineState)
    for state, rows in TABLE.items():
        for event, row in rows.items():
            assert row.event is event
            assert getattr(Engine, row.handler.__name__) is row.handler
            assert state not in row.to  # staying is implicit
        assert TRANSITIONS[state] == {e: r.handler.__name__ for e, r in rows.items()}
    assert all(not row.to for row in TABLE[EngineState.HALTED].values())


def test_order_events_are_late_reports_where_no_order_works() -> None:
    for state in (EngineState.IDLE, EngineState.POSITION_OPEN):
        assert TABLE[state][OrderFilled].handler is Engine._on_late_order
    assert TABLE[EngineState.ORDER_PENDING][OrderFilled].handler is Engine._on_filled


def test_day_book_counts_every_change_it_makes() -> None:
    book = DayBook()
    seen = [book.version]
    book.roll(1)
    seen.append(book.version)
    assert not book.roll(1)
    assert book.version == seen[-1]  # no change, no bump
    book.add(Decimal(1))
    seen.append(book.version)
    book.book_provisional("o1", Decimal(-2))
    seen.append(book.version)
    row = ClosedPnl(
        symbol="SOLUSDT",
        order_id="o1",
        side=Side.BUY,
        qty=Decimal(1),
        closed_size=Decimal(1),
        avg_entry_price=Decimal(10),
        avg_exit_price=Decimal(7),
        closed_pnl=Decimal(-3),
        exec_type="Trade",
        created_ms=86_400_000,
        updated_ms=86_400_000,
    )
    assert book.book_rows([row], 1, frozenset()) != []
    seen.append(book.version)
    assert book.book_rows([row], 1, frozenset()) == []  # counted once
    book.restore(RiskState(day=1, realised_net=Decimal(0), booked_order_ids=(), halted=False))
    seen.append(book.version)
    assert seen == sorted(set(seen))


def test_a_move_the_row_does_not_declare_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ready()
    row = TABLE[EngineState.IDLE][Halt]
    assert EngineState.HALTED in row.to
    monkeypatch.setitem(TABLE[EngineState.IDLE], Halt, attrs.evolve(row, to=frozenset()))
    with pytest.raises(AssertionError, match="Idle -> Halted"):
        engine.handle(Halt(reason="test"), T0)


def test_a_declared_move_passes() -> None:
    engine = ready()
    out = engine.handle(Halt(reason="test"), T0)
    assert engine.state is EngineState.HALTED
    assert any(isinstance(c, Transition) for c in out)


def test_and_then_runs_the_rest_after_the_whole_chain_of_a_move() -> None:
    done: list[str] = []

    def second() -> Step:
        done.append("second")
        return Move(EngineState.POSITION_OPEN, "b")

    def rest() -> Step:
        done.append("rest")
        return STAY

    first = Move(EngineState.ORDER_PENDING, "a", then=second)
    step = and_then(first, rest)
    assert done == []  # nothing runs before the engine makes the first move
    moves: list[EngineState] = []
    while step is not STAY:
        moves.append(step.to)
        step = step.then() if step.then is not None else STAY
    assert moves == [EngineState.ORDER_PENDING, EngineState.POSITION_OPEN]
    assert done == ["second", "rest"]
    assert and_then(STAY, lambda: first) is first  # staying: the rest runs at once


def _adopt_past_the_stop() -> tuple[Engine, list[Command]]:
    engine = ready()
    engine.handle(book(bid=89.99, ask=90.01), T0)  # far below a long's stop from 100
    return engine, engine.handle(holding(Side.BUY, "2", "100"), T0 + 1)


def test_a_read_that_adopts_past_the_stop_moves_twice_in_one_event() -> None:
    engine, out = _adopt_past_the_stop()
    moves = [(c.before, c.after) for c in out if isinstance(c, Transition)]
    assert moves == [
        (EngineState.IDLE, EngineState.POSITION_OPEN),
        (EngineState.POSITION_OPEN, EngineState.CLOSING_POSITION),
    ]
    assert engine.state is EngineState.CLOSING_POSITION


def test_every_move_of_a_chain_is_checked_not_only_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = TABLE[EngineState.IDLE][PositionSnapshot]
    narrowed = attrs.evolve(row, to=frozenset({EngineState.POSITION_OPEN}))
    monkeypatch.setitem(TABLE[EngineState.IDLE], PositionSnapshot, narrowed)
    with pytest.raises(AssertionError, match="PositionOpen -> ClosingPosition"):
        _adopt_past_the_stop()
