"""The engine's state table, row by row, long and short (h11 style: events in, commands out).

Each test feeds a list of events and asserts the full list of commands (in the compact
``view``; causes and messages checked where they carry meaning) and the final state.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import attrs
import pytest

from scalper.core.model import (
    BookUpdate,
    EngineState,
    Halt,
    OpenOrders,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    PlaceOrder,
    Resync,
    Side,
    Tick,
    Transition,
)
from scalper.core.risk import RiskLimits
from scalper.core.strategy import (
    TRANSITIONS,
    Engine,
    EngineConfig,
    EngineError,
    Position,
    is_own_order_link_id,
    make_session_tag,
)

from ._engine_helpers import (
    OTHER,
    SYM,
    T0,
    D,
    book,
    config,
    flat,
    holding,
    momentum_trades,
    no_orders,
    ready,
    run,
    select,
    texts,
    trades,
    view,
)

IDLE = "Idle"
PENDING = "OrderPending"
OPEN = "PositionOpen"
CLOSING = "ClosingPosition"
HALTED = "Halted"
E1 = "scalp-t1-e1"
X2 = "scalp-t1-x2"
X3 = "scalp-t1-x3"

sides = pytest.mark.parametrize("side", [Side.BUY, Side.SELL], ids=["long", "short"])


def calm(now: int = T0) -> Any:
    """Trades that bring momentum back to 0 (so no "skipping entry signal" noise)."""
    return trades([100.0] * 10, ts=now)


def against(side: Side, now: int) -> BookUpdate:
    """A book 0.6 % against the position (beyond the 0.5 % stop)."""
    mid = 99.4 if side is Side.BUY else 100.6
    return book(bid=mid - 0.01, ask=mid + 0.01, ts=now)


def in_favour(side: Side, now: int) -> BookUpdate:
    """A book 1.1 % in favour of the position (beyond the 1 % target)."""
    mid = 101.1 if side is Side.BUY else 98.9
    return book(bid=mid - 0.01, ask=mid + 0.01, ts=now)


def pending(side: Side, cfg: EngineConfig | None = None) -> Engine:
    engine = ready(cfg)
    out = run(engine, [book(), momentum_trades(side)])
    assert view(out)[0][0] == "place"
    assert engine.state is EngineState.ORDER_PENDING
    return engine


def position_open(side: Side, cfg: EngineConfig | None = None) -> Engine:
    engine = pending(side, cfg)
    run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100)), calm()])
    assert engine.state is EngineState.POSITION_OPEN
    return engine


def closing(side: Side, cfg: EngineConfig | None = None) -> Engine:
    engine = position_open(side, cfg)
    out = run(engine, [against(side, T0 + 100)], T0 + 100)
    assert engine.state is EngineState.CLOSING_POSITION, out
    return engine


def protect(side: Side, entry: str = "100") -> tuple[Any, ...]:
    """The exchange stop for a position entered at ``entry``: 0.5 % + 0.25 % margin away,
    rounded away from the entry (0.01 tick)."""
    price = D(entry)
    if side is Side.BUY:
        return ("protect", SYM, (price * D("0.9925")).quantize(D("0.01"), ROUND_FLOOR))
    return ("protect", SYM, (price * D("1.0075")).quantize(D("0.01"), ROUND_CEILING))


def persist(realised: Any, halted: bool = False) -> tuple[Any, ...]:
    return ("persist", D(realised), halted)


def signed(side: Side, amount: str) -> Decimal:
    """``amount`` for a long, its negative for a short."""
    return D(amount) * side.sign


def entry_market(side: Side, link: str = E1) -> tuple[Any, ...]:
    return ("place", side, "Market", D("10.0"), None, "IOC", False, link)


def close_market(side: Side, qty: str = "10.0", link: str = X2) -> tuple[Any, ...]:
    return ("place", side.opposite, "Market", D(qty), None, "IOC", True, link)


# ------------------------------------------------------------ the table itself


def test_every_handler_in_the_table_exists() -> None:
    for state, row in TRANSITIONS.items():
        assert set(row) >= {BookUpdate, Tick, Halt, Resync}, state
        for handler in row.values():
            assert callable(getattr(Engine, handler))
    assert set(TRANSITIONS) == set(EngineState)


def test_event_outside_the_table_raises_and_changes_nothing() -> None:
    engine = ready()
    with pytest.raises(EngineError) as info:
        engine.handle(object(), T0)  # type: ignore[arg-type]
    assert "Idle" in str(info.value) and "object" in str(info.value)
    assert info.value.state is EngineState.IDLE
    assert engine.state is EngineState.IDLE


@pytest.mark.parametrize("state", ["idle", "pending"])
def test_order_event_for_an_id_we_never_issued_raises(state: str) -> None:
    engine = ready() if state == "idle" else pending(Side.BUY)
    before = engine.state
    event = OrderFilled(order_link_id="scalp-old-e7", filled_qty=D(1), avg_price=D(1))
    with pytest.raises(EngineError, match="not issued by this engine"):
        engine.handle(event, T0)
    assert engine.state is before
    assert engine.position is None


# ------------------------------------------------------------ start-up


def test_start_up_needs_a_symbol_then_reconcile_before_trading() -> None:
    engine = Engine(config())
    assert not engine.reconciled
    # market data before any symbol is ignored
    out = run(engine, [book(), momentum_trades(Side.BUY)])
    assert view(out) == [("log", "debug")]
    assert "ignoring book for SOLUSDT" in texts(out)[0]
    out = run(engine, [select()])
    assert view(out) == [("log", "info"), ("subscribe", SYM), ("position?", SYM)]
    # a signal before position and open orders are read: no entry, one debug line
    out = run(engine, [book(), momentum_trades(Side.BUY), momentum_trades(Side.BUY)])
    assert view(out) == [("log", "debug")]
    assert "reconcile" in texts(out)[0]
    out = run(engine, [flat()])
    assert out == [] and not engine.reconciled
    # the next market event after reconciling enters
    out = run(engine, [no_orders(), book()])
    assert view(out) == [entry_market(Side.BUY), ("T", IDLE, PENDING)]


# ------------------------------------------------------------ Idle + signal


@sides
def test_idle_signal_in_a_liquid_book_places_market_ioc(side: Side) -> None:
    engine = ready()
    out = run(engine, [book(), momentum_trades(side)])
    assert view(out) == [entry_market(side), ("T", IDLE, PENDING)]
    cause = texts(out)[0]
    direction = "long" if side is Side.BUY else "short"
    assert cause.startswith(f"entry signal {direction} momentum=")
    assert engine.state is EngineState.ORDER_PENDING
    assert engine.working_order_link_id == E1
    place = out[0]
    assert isinstance(place, PlaceOrder)
    assert type(place.intent.qty) is Decimal


@sides
@pytest.mark.parametrize(
    ("bid", "ask", "size"),
    [(99.93, 100.07, 500.0), (99.99, 100.01, 100.0)],
    ids=["spread-above-liquid", "thin-top"],
)
def test_idle_signal_in_a_thin_book_places_post_only_at_the_touch(
    side: Side, bid: float, ask: float, size: float
) -> None:
    engine = ready()
    out = run(engine, [book(bid=bid, ask=ask, size=size), momentum_trades(side)])
    price = D(str(bid)) if side is Side.BUY else D(str(ask))
    assert view(out) == [
        ("place", side, "Limit", D("10.0"), price, "PostOnly", False, E1),
        ("T", IDLE, PENDING),
    ]


def test_limit_price_is_rounded_to_the_safe_side() -> None:
    engine = ready(tick_size=D("0.05"))
    out = run(engine, [book(bid=99.93, ask=100.07), momentum_trades(Side.BUY)])
    assert view(out)[0][4] == D("99.90")
    engine = ready(tick_size=D("0.05"))
    out = run(engine, [book(bid=99.93, ask=100.07), momentum_trades(Side.SELL)])
    assert view(out)[0][4] == D("100.10")


def test_size_is_rounded_down_to_the_qty_step() -> None:
    engine = ready(qty_step=D("0.3"))
    out = run(engine, [book(), momentum_trades(Side.BUY)])
    assert view(out)[0][3] == D("9.9")


@sides
def test_size_below_the_instrument_minimum_is_refused_with_a_log(side: Side) -> None:
    engine = ready(min_qty=D(11))
    out = run(engine, [book(), momentum_trades(side), momentum_trades(side)])
    assert view(out) == [("log", "info")]
    assert texts(out)[0].startswith("entry refused: qty 10.0 below min 11")
    assert engine.state is EngineState.IDLE


@sides
def test_no_signal_below_threshold_or_before_min_ticks(side: Side) -> None:
    engine = ready()
    last = 100.05 if side is Side.BUY else 99.95  # momentum ~0.00045
    out = run(engine, [book(), trades([100.0] * 9 + [last]), trades([101.0] * 0)])
    assert out == []
    engine = ready()
    out = run(engine, [book(), trades([100.0, 100.0, 100.0, 110.0])])  # 4 < min_ticks
    assert out == []


@sides
@pytest.mark.parametrize(
    ("gate", "events", "logged"),
    [
        ("book-invalid", [book(valid=False)], "book invalid"),
        ("book-stale", [book(ts=T0 - 501)], "book stale"),
        ("spread-wide", [book(bid=99.8, ask=100.2)], None),
        ("no-book", [], "book invalid or missing"),
    ],
)
def test_entry_gates_on_book(side: Side, gate: str, events: list[Any], logged: str | None) -> None:
    engine = ready()
    out = run(engine, [*events, momentum_trades(side), momentum_trades(side)])
    assert not [c for c in out if isinstance(c, PlaceOrder)]
    if logged is None:
        assert out == []
    else:
        assert view(out) == [("log", "debug")]
        assert logged in texts(out)[0]
    assert engine.state is EngineState.IDLE


@sides
def test_stale_trades_gate_entries(side: Side) -> None:
    engine = ready()
    run(engine, [momentum_trades(side, ts=T0 - 501)])
    out = run(engine, [book()])
    assert view(out) == [("log", "debug")]
    assert "trades stale" in texts(out)[0]


@sides
def test_a_fresh_valid_book_lifts_the_gate(side: Side) -> None:
    engine = ready()
    run(engine, [book(valid=False), momentum_trades(side)])
    assert engine.state is EngineState.IDLE
    out = run(engine, [book(ts=T0 + 10)], T0 + 10)
    assert view(out) == [entry_market(side), ("T", IDLE, PENDING)]


@sides
def test_risk_refusal_is_logged_once_per_idle_stay(side: Side) -> None:
    cfg = config(risk=RiskLimits(max_position_usd=D(500), taker_fee_rate=D(0)))
    engine = ready(cfg)
    out = run(engine, [book(), momentum_trades(side), momentum_trades(side)])
    assert view(out) == [("log", "info")]
    assert "above max position" in texts(out)[0]


# ------------------------------------------------------------ OrderPending


@sides
def test_second_signal_while_not_idle_is_skipped_once_per_state(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [momentum_trades(side), book(), momentum_trades(side)])
    assert view(out) == [("log", "info")]
    assert texts(out) == ["Not in Idle state (OrderPending), skipping entry signal"]


@sides
def test_pending_filled_opens_the_position(side: Side) -> None:
    engine = pending(side)
    out = run(
        engine,
        [
            OrderAccepted(order_link_id=E1, order_id="abc"),
            OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D("100.02")),
        ],
        T0 + 5,
    )
    assert view(out) == [("T", PENDING, OPEN), protect(side, "100.02"), ("position?", SYM)]
    assert texts(out) == ["order filled qty=10.0 @ 100.02"]
    assert engine.position == Position(
        side=side, size=D("10.0"), entry_price=D("100.02"), opened_ms=T0 + 5
    )
    assert engine.working_order_link_id is None


@sides
def test_pending_partial_fill_stays_then_full_fill_opens(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [OrderPartiallyFilled(order_link_id=E1, filled_qty=D(4), avg_price=D(100))])
    # a partial fill is a position: protected on the exchange at once
    assert view(out) == [("log", "info"), protect(side)]
    assert (engine.state, engine.position) == (EngineState.ORDER_PENDING, None)
    out = run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D("100.2"))])
    assert view(out) == [("T", PENDING, OPEN), protect(side, "100.2"), ("position?", SYM)]
    assert engine.position is not None and engine.position.size == D("10.0")


@sides
def test_pending_failed_with_nothing_filled_goes_idle_and_cools_down(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [OrderFailed(order_link_id=E1, reason="PostOnly would cross")], T0 + 10)
    assert view(out) == [("T", PENDING, IDLE), ("position?", SYM)]
    assert texts(out) == ["entry order failed: PostOnly would cross"]
    assert engine.position is None
    assert run(engine, [flat()], T0 + 20) == []  # the position read the next entry waits for
    # a fresh signal during the cooldown (3 s) is refused ...
    now = T0 + 2_000
    out = run(engine, [book(ts=now), momentum_trades(side, ts=now)], now)
    # the book alone meets the old trades (stale); with fresh trades the cooldown refuses
    assert view(out) == [("log", "debug"), ("log", "info")]
    assert "trades stale" in texts(out)[0]
    assert "cooling down" in texts(out)[1]
    # ... and taken once it is over
    now = T0 + 3_010
    out = run(engine, [book(ts=now), momentum_trades(side, ts=now)], now)
    assert view(out) == [entry_market(side, "scalp-t1-e2"), ("T", IDLE, PENDING)]


@sides
def test_pending_failed_with_partial_fill_opens_the_partial_size(side: Side) -> None:
    engine = pending(side)
    out = run(
        engine,
        [
            OrderPartiallyFilled(order_link_id=E1, filled_qty=D(3), avg_price=D(100)),
            OrderFailed(order_link_id=E1, reason="timeout", filled_qty=D("3.5")),
        ],
    )
    assert view(out) == [("log", "info"), protect(side), ("T", PENDING, OPEN), ("position?", SYM)]
    assert "after partial fill qty=3.5" in texts(out)[1]
    assert engine.position == Position(side=side, size=D("3.5"), entry_price=D(100), opened_ms=T0)


def test_partial_fill_reported_without_any_price_has_unknown_entry() -> None:
    engine = pending(Side.BUY)
    run(engine, [OrderFailed(order_link_id=E1, reason="timeout", filled_qty=D(2))])
    assert engine.position is not None
    assert engine.position.entry_price is None
    # no stops without an entry price; the exchange's snapshot fills it in
    run(engine, [against(Side.BUY, T0)])
    assert engine.state is EngineState.POSITION_OPEN
    run(engine, [holding(Side.BUY, "2", "100")])
    assert engine.position.entry_price == D(100)
    out = run(engine, [against(Side.BUY, T0)])
    assert view(out)[0] == close_market(Side.BUY, "2")


# ------------------------------------------------------------ PositionOpen exits


@sides
def test_stop_loss_closes_with_reduce_only_market(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [against(side, T0 + 100)], T0 + 100)
    assert view(out) == [close_market(side), ("T", OPEN, CLOSING)]
    assert texts(out)[0].startswith("stop-loss hit at ")
    assert engine.working_order_link_id == X2


@sides
def test_take_profit_closes(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [in_favour(side, T0 + 100)], T0 + 100)
    assert view(out) == [close_market(side), ("T", OPEN, CLOSING)]
    assert texts(out)[0].startswith("take-profit hit at ")


@sides
def test_price_inside_the_band_keeps_the_position(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [book(bid=99.6, ask=99.62), book(bid=100.4, ask=100.42), Tick()])
    assert out == []
    assert engine.state is EngineState.POSITION_OPEN


@sides
def test_max_hold_closes_on_a_tick(side: Side) -> None:
    engine = position_open(side, config(max_hold_ms=30_000))
    assert run(engine, [Tick()], T0 + 29_999) == []
    out = run(engine, [Tick()], T0 + 30_000)
    assert view(out) == [close_market(side), ("T", OPEN, CLOSING)]
    assert texts(out) == ["max hold 30000 ms reached"]


@sides
def test_exits_use_the_last_trade_when_the_book_is_invalid_or_stale(side: Side) -> None:
    engine = position_open(side)
    # an invalid book with a silly price must not trigger anything
    out = run(engine, [book(bid=1.0, ask=2.0, valid=False, ts=T0 + 50)], T0 + 50)
    assert out == []
    # a trade far beyond the stop, long after the book went stale: exit anyway
    price = 99.0 if side is Side.BUY else 101.0
    now = T0 + 60_000
    out = run(engine, [trades([price], ts=now)], now)
    assert view(out)[:2] == [close_market(side), ("T", OPEN, CLOSING)]


@sides
def test_newer_trade_beats_an_older_valid_book(side: Side) -> None:
    engine = position_open(side)
    price = 99.0 if side is Side.BUY else 101.0
    out = run(engine, [trades([price], ts=T0 + 10)], T0 + 10)
    assert view(out)[:2] == [close_market(side), ("T", OPEN, CLOSING)]


# ------------------------------------------------------------ ClosingPosition


@sides
def test_closing_filled_and_flat_goes_idle(side: Side) -> None:
    engine = closing(side)
    price = D("99.4") if side is Side.BUY else D("100.6")
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=price)])
    assert view(out) == [("T", CLOSING, IDLE), ("position?", SYM), ("pnl?", SYM), persist(-6)]
    assert engine.position is None
    assert engine.working_order_link_id is None
    # the loss is booked and starts a cooldown
    assert engine.risk.realised_today(T0) == D("-6.00")
    assert engine.risk.cooling_down(T0 + 100)


@sides
def test_winning_close_books_profit_without_cooldown(side: Side) -> None:
    engine = position_open(side)
    run(engine, [in_favour(side, T0 + 100)], T0 + 100)
    price = D("101.1") if side is Side.BUY else D("98.9")
    run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=price)])
    assert engine.risk.realised_today(T0) == D("11.00")
    assert not engine.risk.cooling_down(T0 + 100)


@sides
def test_closing_partial_fill_stays_closing_with_the_rest(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [OrderPartiallyFilled(order_link_id=X2, filled_qty=D(4), avg_price=D(99))])
    assert view(out) == [persist(signed(side, "-4"))]
    assert engine.state is EngineState.CLOSING_POSITION
    assert engine.position is not None and engine.position.size == D("6.0")
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(99))])
    assert view(out) == [
        ("T", CLOSING, IDLE),
        ("position?", SYM),
        ("pnl?", SYM),
        persist(signed(side, "-10")),
    ]


@sides
def test_closing_order_ended_after_partial_fill_is_reissued_for_the_rest(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [OrderFailed(order_link_id=X2, reason="IOC remainder", filled_qty=D(4))])
    assert view(out) == [("log", "info"), close_market(side, "6.0", X3)]
    assert engine.state is EngineState.CLOSING_POSITION
    assert engine.working_order_link_id == X3


@sides
def test_close_capped_at_max_market_qty_is_continued(side: Side) -> None:
    engine = position_open(side, None)
    assert engine._instrument is not None
    engine._instrument = attrs.evolve(engine._instrument, max_mkt_qty=D(6))
    out = run(engine, [against(side, T0 + 100)], T0 + 100)
    assert view(out) == [close_market(side, "6"), ("T", OPEN, CLOSING)]
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D(6), avg_price=D(99))])
    assert view(out) == [
        ("log", "info"),
        close_market(side, "4.0", X3),
        persist(signed(side, "-6")),
    ]
    out = run(engine, [OrderFilled(order_link_id=X3, filled_qty=D(4), avg_price=D(99))])
    assert view(out) == [
        ("T", CLOSING, IDLE),
        ("position?", SYM),
        ("pnl?", SYM),
        persist(signed(side, "-10")),
    ]


@sides
def test_close_failure_returns_to_position_open_and_retries_after_backoff(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [OrderFailed(order_link_id=X2, reason="rejected 110007")], T0 + 200)
    assert view(out) == [("alert",), ("T", CLOSING, OPEN), ("position?", SYM)]
    assert "retry in 1000 ms" in texts(out)[1]
    assert engine.position is not None and engine.position.size == D("10.0")
    # the backoff holds even though the stop is still breached
    assert run(engine, [against(side, T0 + 300), Tick()], T0 + 1_199) == []
    out = run(engine, [Tick()], T0 + 1_200)
    assert view(out) == [close_market(side, link=X3), ("T", OPEN, CLOSING)]


@sides
def test_close_failure_retry_holds_its_reason_even_if_price_recovers(side: Side) -> None:
    engine = closing(side)
    run(engine, [OrderFailed(order_link_id=X2, reason="timeout")], T0 + 200)
    out = run(engine, [book(ts=T0 + 1_300)], T0 + 1_300)
    assert view(out) == [close_market(side, link=X3), ("T", OPEN, CLOSING)]
    assert texts(out)[0].startswith("stop-loss hit")


def test_dust_position_below_the_qty_step_is_reported_not_ordered() -> None:
    engine = ready()
    run(engine, [holding(Side.BUY, "0.05", "100")])
    assert engine.state is EngineState.POSITION_OPEN
    out = run(engine, [against(Side.BUY, T0)])
    assert view(out) == [("log", "warning")]
    assert "below the qty step" in texts(out)[0]


# ------------------------------------------------------------ PositionSnapshot


@sides
def test_flat_snapshot_while_holding_is_an_external_close(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [flat()])
    # the exchange stop or an outside close: our exit; its result is read from the exchange
    assert view(out) == [("alert",), ("T", OPEN, IDLE), ("pnl?", SYM)]
    assert texts(out)[1].startswith("position closed outside the bot")
    assert engine.position is None


@sides
def test_idle_adopts_a_non_flat_snapshot_with_stops_from_its_entry(side: Side) -> None:
    engine = ready()
    out = run(engine, [holding(side, "2.5", "100")], T0 + 7)
    assert view(out) == [("log", "warning"), ("T", IDLE, OPEN), protect(side)]
    assert engine.position == Position(
        side=side, size=D("2.5"), entry_price=D(100), opened_ms=T0 + 7
    )
    out = run(engine, [against(side, T0 + 10)], T0 + 10)
    assert view(out) == [close_market(side, "2.5", "scalp-t1-x1"), ("T", OPEN, CLOSING)]


@sides
def test_position_open_adopts_the_exchange_size(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [holding(side, "7.3", "100")])
    # the snapshot shows no exchange stop: asked for again
    assert view(out) == [("log", "warning"), protect(side)]
    assert engine.position is not None and engine.position.size == D("7.3")
    assert engine.position.opened_ms == T0
    # same size again, with the stop in place: nothing to say
    stop = protect(side)[2]
    assert run(engine, [attrs.evolve(holding(side, "7.3", "100"), stop_loss=stop)]) == []


@sides
def test_position_open_adopts_a_flipped_side(side: Side) -> None:
    engine = position_open(side)
    run(engine, [holding(side.opposite, "1", "105")], T0 + 9)
    assert engine.position == Position(
        side=side.opposite, size=D(1), entry_price=D(105), opened_ms=T0 + 9
    )


@sides
def test_pending_with_non_flat_snapshot_adopts_and_cancels_the_entry(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [holding(side, "4", "100")])
    assert view(out) == [("cancel", SYM, E1), ("T", PENDING, OPEN), protect(side)]
    assert engine.position is not None and engine.position.size == D(4)
    assert engine.working_order_link_id is None
    # the entry's late fill report is answered with a position read, not double-counted
    out = run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [("log", "info"), ("position?", SYM)]
    assert engine.position.size == D(4)


@sides
def test_pending_with_flat_snapshot_keeps_waiting(side: Side) -> None:
    engine = pending(side)
    assert run(engine, [flat()]) == []
    assert engine.state is EngineState.ORDER_PENDING


@sides
def test_closing_with_flat_snapshot_goes_idle_and_late_fill_is_settled(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [flat()])
    assert view(out) == [("T", CLOSING, IDLE), ("position?", SYM), ("pnl?", SYM)]
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(99))])
    assert view(out) == [("log", "info"), ("position?", SYM), ("pnl?", SYM)]
    assert engine.state is EngineState.IDLE


@sides
def test_closing_with_non_flat_snapshot_waits_for_the_close(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [holding(side, "3", "100"), holding(side, "10.0", "100")])
    # each snapshot without the exchange stop asks for it (once per snapshot)
    assert view(out) == [("log", "debug"), protect(side), protect(side)]
    assert engine.position is not None and engine.position.size == D("10.0")
    assert engine.state is EngineState.CLOSING_POSITION


def test_snapshot_of_another_symbol_raises_an_alert_when_not_flat() -> None:
    engine = position_open(Side.BUY)
    assert run(engine, [flat(OTHER)]) == []
    out = run(engine, [holding(Side.SELL, "1", "2", OTHER)])
    assert view(out) == [("alert",)]
    assert "not managed" in texts(out)[0]
    assert engine.position is not None and engine.position.side is Side.BUY


# ------------------------------------------------------------ SymbolSelected


def test_idle_symbol_switch_happens_now_and_resets_signals() -> None:
    engine = ready()
    run(engine, [book(), trades([100.0] * 8)])
    assert engine.signals.count == 8
    out = run(engine, [select(OTHER)])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]
    assert engine.symbol == OTHER
    assert engine.signals.count == 0
    assert not engine.reconciled
    # old symbol's data still in the channel is ignored (seed fix 4)
    out = run(engine, [book(), momentum_trades(Side.BUY)])
    assert view(out) == [("log", "debug")]  # one line per symbol per interval
    assert engine.signals.count == 0


@sides
def test_symbol_switch_with_a_position_closes_first_then_switches(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [select(OTHER)])
    assert view(out) == [("log", "info"), close_market(side), ("T", OPEN, CLOSING)]
    assert texts(out)[1] == f"symbol switch to {OTHER}"
    assert engine.symbol == SYM and engine.pending_symbol == OTHER
    # no entries while the switch is pending
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(100))])
    # flat in the engine's belief: the switch waits for the exchange to confirm it
    assert view(out) == [("T", CLOSING, IDLE), ("log", "info"), ("position?", SYM), ("pnl?", SYM)]
    assert "waits for a position read" in texts(out)[1]
    assert engine.symbol == SYM and engine.pending_symbol == OTHER
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]
    assert engine.symbol == OTHER and engine.pending_symbol is None


@sides
def test_symbol_switch_while_pending_cancels_the_entry(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [select(OTHER)])
    assert view(out) == [("log", "info"), ("cancel", SYM, E1)]
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled")])
    assert view(out) == [("T", PENDING, IDLE), ("log", "info"), ("position?", SYM)]
    assert engine.symbol == SYM
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]
    assert engine.symbol == OTHER


@sides
def test_symbol_switch_while_pending_then_filled_closes_at_once(side: Side) -> None:
    engine = pending(side)
    run(engine, [select(OTHER)])
    out = run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [
        ("T", PENDING, OPEN),
        protect(side),
        ("position?", SYM),
        close_market(side),
        ("T", OPEN, CLOSING),
    ]


def test_symbol_switch_while_closing_waits_for_flat() -> None:
    engine = closing(Side.BUY)
    out = run(engine, [select(OTHER)])
    assert view(out) == [("log", "info")]
    assert engine.symbol == SYM


def test_selecting_the_current_symbol_again_drops_a_pending_switch() -> None:
    engine = closing(Side.BUY)
    run(engine, [select(OTHER)])
    out = run(engine, [select(SYM)])
    assert view(out) == [("log", "info")]
    assert engine.pending_symbol is None
    assert run(engine, [select(SYM)]) == []


def test_no_entries_while_a_switch_is_pending() -> None:
    engine = closing(Side.BUY)
    run(engine, [select(OTHER)])
    engine._state = EngineState.IDLE  # as if flat but the switch not applied (defensive gate)
    engine._set_position(None)
    engine._working = None
    out = run(engine, [book(), momentum_trades(Side.BUY)])
    assert view(out) == [("log", "debug")]
    assert "pending" in texts(out)[0]


# ------------------------------------------------------------ Halt


def test_halt_in_idle_stops_entries_forever() -> None:
    engine = ready()
    out = run(engine, [Halt(reason="operator")])
    assert view(out) == [("T", IDLE, HALTED), ("alert",)]
    assert engine.halt_reason == "operator"
    out = run(engine, [book(), momentum_trades(Side.BUY), momentum_trades(Side.SELL)])
    assert view(out) == [("log", "info")]
    assert texts(out) == ["Not in Idle state (Halted), skipping entry signal"]
    out = run(engine, [Halt(reason="again"), select(OTHER)])
    assert view(out) == [("log", "info"), ("log", "info")]
    assert engine.symbol == SYM


@sides
def test_halt_while_pending_cancels_the_entry_and_flattens_a_late_fill(side: Side) -> None:
    engine = pending(side)
    out = run(engine, [Halt(reason="shutdown")])
    assert view(out) == [("T", PENDING, HALTED), ("alert",), ("cancel", SYM, E1)]
    out = run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [
        ("log", "info"),
        protect(side),
        ("position?", SYM),
        close_market(side),
        ("log", "info"),
    ]
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [("log", "info"), ("position?", SYM), ("pnl?", SYM)]
    assert engine.state is EngineState.HALTED and engine.position is None


@sides
def test_halt_while_pending_with_cancel_confirmed_stays_halted_flat(side: Side) -> None:
    engine = pending(side)
    run(engine, [Halt(reason="x")])
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled")])
    assert view(out) == [("log", "info"), ("position?", SYM)]
    assert engine.state is EngineState.HALTED


@sides
def test_halt_with_a_position_flattens_when_configured(side: Side) -> None:
    engine = position_open(side)
    out = run(engine, [Halt(reason="kill")])
    assert view(out) == [("T", OPEN, HALTED), ("alert",), close_market(side), ("log", "info")]
    # a failed close is retried after the backoff, still halted
    out = run(engine, [OrderFailed(order_link_id=X2, reason="503")], T0 + 1)
    assert view(out) == [("alert",), ("log", "info"), ("position?", SYM)]
    assert run(engine, [Tick()], T0 + 500) == []
    out = run(engine, [Tick()], T0 + 1_001)
    assert view(out) == [close_market(side, link=X3), ("log", "info")]


@sides
def test_halt_without_flatten_keeps_the_stops_running(side: Side) -> None:
    engine = position_open(side, config(flatten_on_halt=False))
    out = run(engine, [Halt(reason="kill")])
    assert view(out) == [("T", OPEN, HALTED), ("alert",)]
    assert run(engine, [Tick()], T0 + 10) == []
    out = run(engine, [against(side, T0 + 20)], T0 + 20)
    assert view(out) == [close_market(side), ("log", "info")]


@sides
def test_halt_while_closing_keeps_tracking_the_close(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [Halt(reason="x")])
    assert view(out) == [("T", CLOSING, HALTED), ("alert",)]
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("position?", SYM), ("pnl?", SYM)]
    assert engine.position is None


@sides
def test_halted_external_close_and_adoption(side: Side) -> None:
    engine = position_open(side, config(flatten_on_halt=False))
    run(engine, [Halt(reason="x")])
    out = run(engine, [flat()])
    assert (view(out), engine.position) == ([("alert",), ("log", "info"), ("pnl?", SYM)], None)
    out = run(engine, [holding(side, "1", "100")])
    # halted, an adopted position is still protected on the exchange
    assert view(out) == [("log", "warning"), ("log", "info"), protect(side)]
    assert engine.position is not None and engine.state is EngineState.HALTED


# ------------------------------------------------------------ kill switch


@sides
def test_losing_close_beyond_the_daily_limit_halts(side: Side) -> None:
    cfg = config(risk=RiskLimits(max_daily_loss_usd=D(7), taker_fee_rate=D(0)))
    engine = closing(side, cfg)  # unrealised -6: below the limit
    price = D("99.2") if side is Side.BUY else D("100.8")
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=price)])
    assert view(out) == [
        ("T", CLOSING, IDLE),
        ("position?", SYM),
        ("pnl?", SYM),
        ("T", IDLE, HALTED),
        ("alert",),
        persist(-8, halted=True),
    ]
    assert "daily loss 8.00 reached limit 7" in texts(out)[1]


@sides
def test_unrealised_loss_beyond_the_daily_limit_halts_and_flattens(side: Side) -> None:
    cfg = config(risk=RiskLimits(max_daily_loss_usd=D(3), taker_fee_rate=D(0)), stop_loss_pct=5.0)
    engine = position_open(side, cfg)
    out = run(engine, [against(side, T0 + 10)], T0 + 10)
    assert view(out) == [
        ("T", OPEN, HALTED),
        ("alert",),
        close_market(side),
        ("log", "info"),
        persist(0, halted=True),
    ]


@sides
def test_failed_close_with_loss_beyond_limit_halts(side: Side) -> None:
    cfg = config(
        risk=RiskLimits(max_daily_loss_usd=D(7), taker_fee_rate=D(0)), flatten_on_halt=False
    )
    engine = closing(side, cfg)  # unrealised -6: below the limit
    engine.risk.record_realised_pnl(D(-2), T0)  # an earlier loss today
    out = run(engine, [OrderFailed(order_link_id=X2, reason="x")], T0 + 100)
    assert view(out) == [
        ("alert",),
        ("T", CLOSING, OPEN),
        ("position?", SYM),
        ("T", OPEN, HALTED),
        ("alert",),
        persist(-2, halted=True),
    ]


# ------------------------------------------------------------ Resync / OpenOrders


@sides
def test_resync_blocks_entries_until_position_and_orders_are_read(side: Side) -> None:
    engine = ready()
    out = run(engine, [Resync(reason="public ws reconnected")])
    assert view(out) == [("log", "info"), ("position?", SYM)]
    out = run(engine, [book(), momentum_trades(side)])
    assert view(out) == [("log", "debug")]
    out = run(engine, [no_orders(), momentum_trades(side)])
    assert out == []  # still waiting for the position (logged once already)
    out = run(engine, [flat(), momentum_trades(side)])
    assert view(out) == [entry_market(side), ("T", IDLE, PENDING)]


def test_resync_before_any_symbol_asks_for_nothing() -> None:
    engine = Engine(config())
    assert view(run(engine, [Resync(reason="start")])) == [("log", "info")]


def test_stray_orders_with_our_prefix_are_cancelled_others_left_alone() -> None:
    engine = pending(Side.BUY)
    out = run(
        engine,
        [OpenOrders(symbol=SYM, order_link_ids=(E1, "scalp-old-e9", "manual-1", "scalpX-1"))],
    )
    assert view(out) == [("log", "warning"), ("cancel", SYM, "scalp-old-e9")]


def test_open_orders_of_another_symbol_do_not_reconcile_but_strays_are_cancelled() -> None:
    engine = Engine(config())
    run(engine, [select(), flat()])
    out = run(engine, [OpenOrders(symbol=OTHER, order_link_ids=("scalp-zz-x1",))])
    assert view(out) == [("log", "warning"), ("cancel", OTHER, "scalp-zz-x1")]
    assert not engine.reconciled


@sides
def test_released_entry_blocks_new_entries_until_its_end_is_known(side: Side) -> None:
    engine = pending(side)
    run(engine, [holding(side, "4", "100"), flat()])  # adopt, then closed outside
    assert engine.state is EngineState.IDLE
    out = run(engine, [book(), momentum_trades(side)])
    assert view(out) == [("log", "debug")]
    assert "not confirmed" in texts(out)[0]
    # an open-orders read without it proves it ended, not how much it filled: read that
    out = run(engine, [no_orders(), momentum_trades(side)])
    assert view(out) == [("position?", SYM), ("log", "debug")]
    assert "waiting for position read after an unclear entry" in texts(out)[0]
    out = run(engine, [flat(), momentum_trades(side)])
    assert view(out) == [entry_market(side, "scalp-t1-e2"), ("T", IDLE, PENDING)]


@sides
def test_released_entry_end_reported_late_unblocks_entries(side: Side) -> None:
    engine = pending(side)
    run(engine, [holding(side, "4", "100"), flat()])
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled")])
    assert view(out) == [("log", "debug"), ("position?", SYM)]
    out = run(engine, [book()])
    assert view(out) == [entry_market(side, "scalp-t1-e2"), ("T", IDLE, PENDING)]


def test_late_accept_and_partial_for_an_ended_order_only_log() -> None:
    engine = position_open(Side.BUY)
    out = run(
        engine,
        [
            OrderAccepted(order_link_id=E1, order_id="x"),
            OrderPartiallyFilled(order_link_id=E1, filled_qty=D(1), avg_price=D(1)),
        ],
    )
    assert view(out) == [("log", "debug"), ("log", "info"), ("position?", SYM), ("pnl?", SYM)]


# ------------------------------------------------------------ other-symbol data


def test_other_symbol_data_is_ignored_with_a_rate_limited_log() -> None:
    engine = position_open(Side.BUY)
    far = 90.0
    out = run(engine, [book(bid=far, ask=far + 0.01, symbol=OTHER)] * 5, T0 + 1)
    assert view(out) == [("log", "debug")]
    out = run(engine, [trades([far], symbol=OTHER)], T0 + 10_001)
    assert view(out) == [("log", "debug")]
    assert "5 ignored since last report" in texts(out)[0]
    assert engine.state is EngineState.POSITION_OPEN


# ------------------------------------------------------------ ids and config


def test_order_link_ids_are_unique_short_and_recognisable() -> None:
    engine = ready(config(session_tag=make_session_tag(T0 * 1000), link_id_prefix="scalp_bot01"))
    out = run(engine, [book(), momentum_trades(Side.BUY)])
    place = out[0]
    assert isinstance(place, PlaceOrder)
    link = place.intent.order_link_id
    assert len(link) <= 36
    assert is_own_order_link_id(link, "scalp_bot01")
    assert not is_own_order_link_id(link, "scalp")
    assert engine.owns(link)
    assert not engine.owns(link + "0")
    assert not engine.owns("scalp_bot01-other-e1")
    assert not engine.owns(link[:-1] + "z")


def test_make_session_tag() -> None:
    assert make_session_tag(0) == "0"
    assert make_session_tag(36) == "10"
    assert make_session_tag(T0) != make_session_tag(T0 + 1)
    assert len(make_session_tag(2**80)) == 12
    with pytest.raises(ValueError):
        make_session_tag(-1)


@pytest.mark.parametrize(
    "kw",
    [
        {"session_tag": ""},
        {"session_tag": "has-dash"},
        {"link_id_prefix": "x" * 13},
        {"window": 0},
        {"min_ticks": 11},
        {"position_usd": 1000.0},
        {"position_usd": D(0)},
        {"stop_loss_pct": 0},
        {"max_spread_bps": True},
        {"momentum_threshold": -1.0},
        {"max_hold_ms": 0},
        {"stale_ms": 1.5},
    ],
)
def test_bad_engine_config_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        config(**kw)


def test_cooldown_lives_in_the_risk_limits() -> None:
    assert config().cooldown_ms == 3_000


def test_transitions_are_reported_with_their_cause() -> None:
    engine = position_open(Side.BUY)
    out = run(engine, [against(Side.BUY, T0 + 1)], T0 + 1)
    transitions = [c for c in out if isinstance(c, Transition)]
    assert len(transitions) == 1
    assert transitions[0].before is EngineState.POSITION_OPEN
    assert transitions[0].cause == "stop-loss hit at 99.4 (entry 100, stop 99.5)"


# ------------------------------------------------------------ late reports in working states


def test_late_fill_of_the_entry_while_closing_asks_for_the_position() -> None:
    engine = pending(Side.BUY)
    run(engine, [holding(Side.BUY, "10.0", "100"), against(Side.BUY, T0 + 1)], T0 + 1)
    assert engine.state is EngineState.CLOSING_POSITION
    for late in (
        OrderAccepted(order_link_id=E1, order_id="1"),
        OrderPartiallyFilled(order_link_id=E1, filled_qty=D(1), avg_price=D(100)),
        OrderFailed(order_link_id=E1, reason="cancelled", filled_qty=D(0)),
    ):
        out = engine.handle(late, T0 + 2)
        assert view(out)[0][0] == "log"
    assert engine.state is EngineState.CLOSING_POSITION
    assert engine.working_order_link_id == X2


@sides
def test_close_that_ends_with_everything_filled_goes_idle(side: Side) -> None:
    engine = closing(side)
    out = run(engine, [OrderFailed(order_link_id=X2, reason="IOC", filled_qty=D("10.0"))])
    assert view(out) == [("T", CLOSING, IDLE), ("position?", SYM), ("pnl?", SYM)]
    assert "with all filled" in texts(out)[0]


# ------------------------------------------------------------ seed checklist item 4


@sides
def test_seed_item_4_full_cycle_with_symbol_race_and_skip(side: Side) -> None:
    """Idle -> OrderPending -> PositionOpen -> ClosingPosition -> Idle; a second signal
    while not Idle is skipped with the seed's message; an old symbol's tick is ignored."""
    engine = Engine(config())
    now = T0
    commands = run(engine, [select(OTHER), flat(OTHER), no_orders(OTHER), select(SYM)], now)
    assert view(commands)[-3:] == [("log", "info"), ("subscribe", SYM), ("position?", SYM)]
    commands = run(engine, [flat(), no_orders()], now)
    assert commands == []
    # the old symbol's trades still in the channel: ignored, not an entry signal
    commands = run(engine, [book(symbol=OTHER), momentum_trades(side, symbol=OTHER)], now)
    assert view(commands) == [("log", "debug")]
    assert engine.state is EngineState.IDLE
    # signal on the current symbol -> entry
    commands = run(engine, [book(), momentum_trades(side)], now)
    assert view(commands) == [entry_market(side), ("T", IDLE, PENDING)]
    # a second signal while the entry is pending: skipped with the seed's message
    commands = run(engine, [momentum_trades(side), momentum_trades(side)], now + 1)
    assert texts(commands) == ["Not in Idle state (OrderPending), skipping entry signal"]
    # fill -> PositionOpen, position read
    commands = run(
        engine,
        [
            OrderAccepted(order_link_id=E1, order_id="o-1"),
            OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100)),
        ],
        now + 50,
    )
    assert view(commands) == [("T", PENDING, OPEN), protect(side), ("position?", SYM)]
    stop = protect(side)[2]
    assert run(engine, [attrs.evolve(holding(side, "10.0", "100"), stop_loss=stop)], now + 60) == []
    # still a signal in PositionOpen: skipped once
    commands = run(engine, [book(ts=now + 70), momentum_trades(side, ts=now + 70)], now + 70)
    assert view(commands) == [("log", "info")]
    assert texts(commands) == ["Not in Idle state (PositionOpen), skipping entry signal"]
    # take-profit -> ClosingPosition
    commands = run(engine, [calm(now + 80), in_favour(side, now + 90)], now + 90)
    assert view(commands) == [close_market(side), ("T", OPEN, CLOSING)]
    # close fill -> Idle
    price = D("101.1") if side is Side.BUY else D("98.9")
    commands = run(
        engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=price)], now + 120
    )
    assert view(commands) == [
        ("T", CLOSING, IDLE),
        ("position?", SYM),
        ("pnl?", SYM),
        persist(11),
    ]
    assert run(engine, [flat()], now + 130) == []
    assert engine.state is EngineState.IDLE and engine.position is None


@sides
def test_pending_switch_waits_for_a_let_go_entry_to_end(side: Side) -> None:
    engine = pending(side)
    run(engine, [select(OTHER)])  # cancel sent for E1
    out = run(engine, [holding(side, "4", "100")])  # entry partly filled: adopt, close
    assert view(out) == [
        ("cancel", SYM, E1),
        ("T", PENDING, OPEN),
        close_market(side, "4"),
        ("T", OPEN, CLOSING),
        protect(side),
    ]
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D(4), avg_price=D(100))])
    # flat, but E1's end is unknown: stay on SYM
    assert view(out) == [("T", CLOSING, IDLE), ("position?", SYM), ("pnl?", SYM)]
    assert engine.symbol == SYM and engine.pending_symbol == OTHER
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled", filled_qty=D(4))])
    # E1 has ended: the switch now waits only for a read confirming flat
    assert view(out) == [("log", "info"), ("position?", SYM), ("log", "info")]
    assert engine.symbol == SYM
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]
    assert engine.symbol == OTHER


def test_pending_switch_applies_when_open_orders_prove_the_entry_ended() -> None:
    engine = pending(Side.BUY)
    run(engine, [select(OTHER), holding(Side.BUY, "4", "100")])
    run(engine, [OrderFilled(order_link_id=X2, filled_qty=D(4), avg_price=D(100))])
    assert engine.symbol == SYM
    out = run(engine, [no_orders()])
    assert view(out) == [("position?", SYM), ("log", "info")]
    assert engine.symbol == SYM
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]


@sides
def test_close_refused_because_already_flat_settles_on_the_position_read(side: Side) -> None:
    engine = closing(side)
    run(engine, [OrderFailed(order_link_id=X2, reason="110017 reduce-only rule")], T0 + 200)
    out = run(engine, [flat()], T0 + 300)
    assert view(out) == [("alert",), ("T", OPEN, IDLE), ("pnl?", SYM)]
    assert engine.position is None
    assert run(engine, [Tick()], T0 + 5_000) == []  # no blind retry left
