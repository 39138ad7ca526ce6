"""The engine's operator controls: Pause, Resume and Flatten, as event lists.

Each test feeds events and asserts the whole list of commands and the resulting
state, like the rest of the engine tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from scalper.core.model import (
    EngineState,
    Event,
    Flatten,
    Halt,
    OrderFailed,
    OrderFilled,
    Pause,
    Resume,
    Side,
    Tick,
)
from scalper.core.strategy import TRANSITIONS, Engine, EngineConfig

from ._engine_helpers import (
    T0,
    D,
    book,
    config,
    flat,
    momentum_trades,
    ready,
    run,
    texts,
    trades,
    view,
)

E1 = "scalp-t1-e1"
X2 = "scalp-t1-x2"
E3 = "scalp-t1-e3"
sides = pytest.mark.parametrize("side", [Side.BUY, Side.SELL], ids=["long", "short"])


def signal(side: Side, now: int = T0) -> list[Event]:
    return [book(ts=now), momentum_trades(side, ts=now)]


def pending(side: Side, cfg: EngineConfig | None = None) -> Engine:
    engine = ready(cfg)
    run(engine, signal(side))
    assert engine.state is EngineState.ORDER_PENDING
    return engine


def holding(side: Side, cfg: EngineConfig | None = None) -> Engine:
    engine = pending(side, cfg)
    calm = trades([100.0] * 10)
    run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100)), calm])
    assert engine.state is EngineState.POSITION_OPEN
    return engine


def close(side: Side, link: str = X2) -> tuple[Any, ...]:
    return ("place", side.opposite, "Market", D("10.0"), None, "IOC", True, link)


def test_operator_controls_are_accepted_in_every_state() -> None:
    for state, row in TRANSITIONS.items():
        assert {Pause, Resume, Flatten} <= set(row), state


def test_origin_must_be_given() -> None:
    with pytest.raises(ValueError, match="origin"):
        Pause(origin="")


@sides
def test_pause_blocks_entries_and_resume_trades_again(side: Side) -> None:
    engine = ready()
    out = run(engine, [Pause(origin="tty")])
    assert view(out) == [("log", "warning")]
    assert texts(out) == ["paused by tty: no new entries"]
    assert engine.paused and engine.paused_by == "tty"
    out = run(engine, signal(side))
    assert view(out) == [("log", "debug")]
    assert texts(out) == ["entry signal skipped: paused by tty"]
    assert engine.state is EngineState.IDLE
    out = run(engine, [Resume(origin="telegram:42")])
    assert texts(out) == ["resumed by telegram:42: entries allowed"]
    assert not engine.paused and engine.paused_by is None
    out = run(engine, signal(side))
    assert view(out)[0] == ("place", side, "Market", D("10.0"), None, "IOC", False, E1)
    assert engine.state is EngineState.ORDER_PENDING


@sides
def test_pause_while_an_entry_works_cancels_it(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [Pause(origin="http")])
    assert view(out) == [("log", "warning"), ("cancel", "SOLUSDT", E1)]
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled")])
    assert engine.state is EngineState.IDLE and engine.paused
    # a partial fill before the cancel landed is a position like any other, with stops
    engine = pending(side)
    run(engine, [Pause(origin="http")])
    run(
        engine,
        [OrderFailed(order_link_id=E1, reason="cancelled", filled_qty=D("3.0"), avg_price=D(100))],
    )
    assert engine.state is EngineState.POSITION_OPEN and engine.stop_price is not None


def test_pause_twice_and_resume_when_not_paused_only_log() -> None:
    engine = ready()
    run(engine, [Pause(origin="http")])
    out = run(engine, [Pause(origin="tty"), Resume(origin="tty"), Resume(origin="tty")])
    assert texts(out) == [
        "pause by tty: already paused by http",
        "resumed by tty: entries allowed",
        "resume by tty: not paused",
    ]
    assert not engine.paused


@sides
def test_pause_keeps_the_stop_loss_running(side: Side) -> None:
    engine = holding(side)
    run(engine, [Pause(origin="http")])
    against = 99.4 if side is Side.BUY else 100.6
    out = run(engine, [book(bid=against - 0.01, ask=against + 0.01, ts=T0 + 50)], T0 + 50)
    assert view(out)[0] == close(side)
    assert engine.state is EngineState.CLOSING_POSITION
    assert engine.paused


@sides
def test_flatten_closes_the_position_now_and_pauses(side: Side) -> None:
    engine = holding(side)
    out = run(engine, [Flatten(origin="telegram:7")], T0 + 10)
    assert view(out) == [("log", "warning"), close(side), ("T", "PositionOpen", "ClosingPosition")]
    assert texts(out) == ["flatten by telegram:7: closing; paused", "flatten by telegram:7"]
    assert engine.paused and engine.paused_by == "telegram:7"
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(100))])
    assert engine.state is EngineState.IDLE and engine.position is None
    # still paused: no re-entry on the next signal, until resumed
    out = run(engine, signal(side, T0 + 20), T0 + 20)
    assert [c for c in view(out) if c[0] == "place"] == []
    run(engine, [Resume(origin="tty")], T0 + 20)
    out = run(engine, signal(side, T0 + 30), T0 + 30)
    assert view(out)[0] == ("place", side, "Market", D("10.0"), None, "IOC", False, E3)


@sides
def test_flatten_while_pending_cancels_and_closes_a_partial_fill(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [Flatten(origin="http")])
    assert view(out) == [("log", "warning"), ("cancel", "SOLUSDT", E1)]
    out = run(
        engine,
        [OrderFailed(order_link_id=E1, reason="cancelled", filled_qty=D("4.0"), avg_price=D(100))],
    )
    places = [c for c in view(out) if c[0] == "place"]
    assert places == [("place", side.opposite, "Market", D("4.0"), None, "IOC", True, X2)]
    assert engine.state is EngineState.CLOSING_POSITION


@sides
def test_flatten_while_pending_with_nothing_filled_ends_flat_and_paused(side: Side) -> None:
    engine = pending(side)
    run(engine, [Flatten(origin="http")])
    run(engine, [OrderFailed(order_link_id=E1, reason="cancelled")])
    assert engine.state is EngineState.IDLE and engine.paused
    assert run(engine, [Tick()], T0 + 5) == []


def test_flatten_when_flat_only_pauses() -> None:
    engine = ready()
    out = run(engine, [Flatten(origin="tty")])
    assert view(out) == [("log", "warning")]
    assert texts(out) == ["flatten by tty: already flat; paused"]
    assert engine.paused and engine.state is EngineState.IDLE


@sides
def test_flatten_while_halted_without_flatten_on_halt_closes(side: Side) -> None:
    engine = holding(side, config(flatten_on_halt=False))
    run(engine, [Halt(reason="kill")])
    out = run(engine, [Flatten(origin="http")], T0 + 10)
    assert view(out) == [("log", "warning"), close(side), ("log", "info")]
    assert engine.state is EngineState.HALTED
    run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(100)), flat()])
    assert engine.position is None and engine.state is EngineState.HALTED
    out = run(engine, [Resume(origin="http")])
    assert texts(out) == ["resumed by http: entries allowed (still halted: kill)"]
    assert engine.state is EngineState.HALTED
