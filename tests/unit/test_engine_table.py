"""The engine's table is the documentation, and every row is one the engine obeys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from scalper.core.engine import TABLE, TRANSITIONS, Engine
from scalper.core.model import (
    ClosedPnl,
    EngineState,
    Halt,
    OrderFilled,
    RiskState,
    Side,
    Transition,
)
from scalper.core.pnl import DayBook
from scalper.core.table import render
from tests.unit._engine_helpers import T0, ready

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
