"""Issue 9, the engine's part: exchange-side stops, a loss limit that counts every dollar
and survives restarts, switches only after the exchange confirmed flat, a position read
after an unclear entry, and the trade window cleared after a market-data gap.

Events in, full command lists out (``view``), as in test_strategy.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from scalper.core.model import (
    ClosedPnl,
    ClosedPnlRows,
    EngineState,
    OrderAccepted,
    OrderFailed,
    OrderFilled,
    OrderPartiallyFilled,
    PersistRiskState,
    PlaceOrder,
    ProtectionFailed,
    ProtectionSet,
    Resync,
    RiskState,
    Side,
    Tick,
    TriggerBy,
)
from scalper.core.pnl import DAY_MS, Fill, Ledger
from scalper.core.risk import RiskLimits
from scalper.core.strategy import Engine, EngineConfig

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
    view,
)

E1 = "scalp-t1-e1"
X2 = "scalp-t1-x2"
X3 = "scalp-t1-x3"
sides = pytest.mark.parametrize("side", [Side.BUY, Side.SELL], ids=["long", "short"])


def fee_config(**kw: Any) -> EngineConfig:
    risk = RiskLimits(
        max_position_usd=D(5000),
        max_daily_loss_usd=D(100),
        cooldown_ms=3_000,
        taker_fee_rate=D("0.001"),
        **kw,
    )
    return config(risk=risk)


def filled_entry(side: Side, cfg: EngineConfig | None = None, **fill: Any) -> Engine:
    engine = ready(cfg)
    run(engine, [book(), momentum_trades(side)])
    run(engine, [OrderAccepted(order_link_id=E1, order_id="oid-e1")])
    run(
        engine,
        [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100), **fill)],
    )
    run(engine, [attrs.evolve(holding(side, "10.0", "100"), stop_loss=stop(side))])
    assert engine.state is EngineState.POSITION_OPEN
    return engine


def stop(side: Side, entry: str = "100") -> Decimal:
    """0.5 % stop + 0.25 % margin, rounded away from the entry on the 0.01 tick."""
    from decimal import ROUND_CEILING, ROUND_FLOOR

    price = D(entry)
    if side is Side.BUY:
        return (price * D("0.9925")).quantize(D("0.01"), ROUND_FLOOR)
    return (price * D("1.0075")).quantize(D("0.01"), ROUND_CEILING)


def row(order_id: str, pnl: str, *, ts: int = T0, size: str = "10.0", symbol: str = SYM) -> Any:
    return ClosedPnl(
        symbol=symbol,
        order_id=order_id,
        side=Side.SELL,
        qty=D(size),
        closed_size=D(size),
        avg_entry_price=D(100),
        avg_exit_price=D(99),
        closed_pnl=D(pnl),
        exec_type="Trade",
        created_ms=ts,
        updated_ms=ts,
    )


# ------------------------------------------------------------ hole 1: exchange stops


@sides
def test_market_entry_carries_the_exchange_stop_from_the_mid(side: Side) -> None:
    engine = ready()
    out = run(engine, [book(), momentum_trades(side)])
    place = out[0]
    assert isinstance(place, PlaceOrder)
    # mid 100.00: 0.75 % away, rounded away from the entry, beyond the engine's 0.5 % stop
    assert place.intent.stop_loss == (D("99.25") if side is Side.BUY else D("100.75"))
    assert place.intent.sl_trigger_by is TriggerBy.MARK_PRICE


@sides
def test_limit_entry_stop_is_from_its_price_and_rounded_away(side: Side) -> None:
    cfg = config(
        risk=RiskLimits(
            exchange_stop_margin_pct=0.3,
            exchange_stop_trigger=TriggerBy.LAST_PRICE,
            taker_fee_rate=D(0),
        )
    )
    engine = ready(cfg)
    out = run(engine, [book(bid=99.93, ask=100.07), momentum_trades(side)])
    place = out[0]
    assert isinstance(place, PlaceOrder) and place.intent.price is not None
    # 0.8 % from 99.93 (long) = 99.13056 -> 99.13; from 100.07 (short) = 100.87056 -> 100.88
    assert place.intent.stop_loss == (D("99.13") if side is Side.BUY else D("100.88"))
    assert place.intent.sl_trigger_by is TriggerBy.LAST_PRICE
    engine_stop = float(place.intent.price) * (0.995 if side is Side.BUY else 1.005)
    assert (float(place.intent.stop_loss) < engine_stop) == (side is Side.BUY)


@sides
def test_fill_asks_for_the_stop_once_and_a_snapshot_without_it_asks_again(side: Side) -> None:
    engine = ready()
    run(engine, [book(), momentum_trades(side)])
    out = run(engine, [OrderFilled(order_link_id=E1, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [
        ("T", "OrderPending", "PositionOpen"),
        ("protect", SYM, stop(side)),
        ("position?", SYM),
    ]
    # a Tick does not repeat it (not a flood)
    assert run(engine, [Tick()], T0 + 1) == []
    # the exchange confirms; a snapshot with the stop in place needs nothing
    out = run(engine, [ProtectionSet(symbol=SYM, stop_loss=stop(side))])
    assert view(out) == [("log", "info")]
    assert run(engine, [attrs.evolve(holding(side, "10.0", "100"), stop_loss=stop(side))]) == []
    # a snapshot without it (or with another) asks again, once per snapshot
    out = run(engine, [holding(side, "10.0", "100")])
    assert view(out) == [("protect", SYM, stop(side))]
    wrong = D(90) if side is Side.BUY else D(110)
    out = run(engine, [attrs.evolve(holding(side, "10.0", "100"), stop_loss=wrong)])
    assert view(out) == [("protect", SYM, stop(side))]


def test_the_stop_follows_the_entry_price_after_a_size_change() -> None:
    engine = filled_entry(Side.BUY)
    out = run(engine, [holding(Side.BUY, "15.0", "102")])
    assert view(out) == [("log", "warning"), ("protect", SYM, stop(Side.BUY, "102"))]


@sides
def test_refused_stop_closes_the_position_at_once_with_an_alert(side: Side) -> None:
    engine = filled_entry(side)
    out = run(engine, [ProtectionFailed(symbol=SYM, reason="10001 wrong side")])
    assert [v[0] for v in view(out)] == ["alert", "place", "T"]
    assert "exchange refused the stop" in texts(out)[0]
    assert texts(out)[1] == "exchange refused the stop: 10001 wrong side"
    assert engine.state is EngineState.CLOSING_POSITION


def test_refused_stop_during_a_partial_entry_cancels_then_closes() -> None:
    engine = ready()
    run(engine, [book(), momentum_trades(Side.BUY)])
    out = run(engine, [OrderPartiallyFilled(order_link_id=E1, filled_qty=D(4), avg_price=D(100))])
    assert view(out)[-1] == ("protect", SYM, stop(Side.BUY))
    out = run(engine, [ProtectionFailed(symbol=SYM, reason="refused")])
    assert view(out) == [("alert",), ("cancel", SYM, E1)]
    out = run(engine, [OrderFailed(order_link_id=E1, reason="cancelled", filled_qty=D(4))])
    assert view(out)[-2][:2] == ("place", Side.SELL)
    assert engine.state is EngineState.CLOSING_POSITION


def test_refused_stop_without_a_position_only_logs() -> None:
    engine = ready()
    assert view(run(engine, [ProtectionFailed(symbol=SYM, reason="zero position")])) == [
        ("log", "info")
    ]
    assert view(run(engine, [ProtectionSet(symbol=OTHER, stop_loss=D(1))])) == [("log", "info")]


@sides
def test_exchange_stop_close_seen_in_a_snapshot_is_our_exit_and_counted(side: Side) -> None:
    engine = filled_entry(side, fee_config())
    out = run(engine, [flat()], T0 + 100)
    assert view(out) == [("alert",), ("T", "PositionOpen", "Idle"), ("pnl?", SYM)]
    # the stop's closed-PnL row (an order not ours) is counted, net of fees
    out = run(engine, [ClosedPnlRows(rows=(row("stop-1", "-7.6", ts=T0 + 90),))], T0 + 110)
    assert view(out) == [("log", "info"), ("persist", D("-7.6"), False)]
    assert engine.risk.realised_today(T0 + 110) == D("-7.6")


@sides
def test_a_closed_pnl_row_not_ours_while_holding_is_the_exit(side: Side) -> None:
    engine = filled_entry(side, fee_config())
    out = run(engine, [ClosedPnlRows(rows=(row("liq-1", "-50", ts=T0 + 5),))], T0 + 10)
    assert view(out) == [
        ("log", "info"),
        ("alert",),
        ("T", "PositionOpen", "Idle"),
        ("pnl?", SYM),
        ("position?", SYM),
        ("persist", D(-50), False),
    ]
    assert engine.position is None
    # a row from before the position existed is counted but is not its exit
    engine = filled_entry(side, fee_config())
    out = run(engine, [ClosedPnlRows(rows=(row("old-1", "-1", ts=T0 - 60_000),))], T0 + 10)
    assert view(out) == [("log", "info"), ("persist", D(-1), False)]
    assert engine.position is not None


@sides
def test_a_row_just_older_than_the_position_is_checked_with_the_exchange(side: Side) -> None:
    # A close of the last position can be read just after this one opened: within the
    # clock slack only the exchange can say, so the engine reads the position instead
    # of taking the row for this position's exit (it would drop a position still held).
    engine = filled_entry(side, fee_config())
    out = run(engine, [ClosedPnlRows(rows=(row("stop-0", "-3", ts=T0 - 25),))], T0 + 10)
    assert view(out) == [
        ("log", "info"),
        ("log", "info"),
        ("position?", SYM),
        ("persist", D(-3), False),
    ]
    assert engine.position is not None
    assert engine.state is EngineState.POSITION_OPEN


# ------------------------------------------------------------ hole 2: every dollar


@sides
def test_own_close_is_booked_net_of_fees_then_replaced_by_the_exchange_row(side: Side) -> None:
    engine = filled_entry(side, fee_config(), fee=D("0.6"))
    out = run(
        engine,
        [book(bid=99.39, ask=99.41, ts=T0 + 5)]
        if side is Side.BUY
        else [book(bid=100.59, ask=100.61, ts=T0 + 5)],
        T0 + 5,
    )
    assert engine.state is EngineState.CLOSING_POSITION
    exit_price = D("99.4") if side is Side.BUY else D("100.6")
    run(engine, [OrderAccepted(order_link_id=X2, order_id="oid-x2")], T0 + 6)
    out = run(
        engine,
        [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=exit_price, fee=D("0.5"))],
        T0 + 7,
    )
    # price -6.00, entry fee 0.6, exit fee 0.5 (both reported): -7.1
    assert view(out)[-1] == ("persist", D("-7.1"), False)
    assert engine.risk.realised_today(T0 + 7) == D("-7.1")
    # the exchange's row for our close replaces the provisional figure (funding included)
    out = run(engine, [ClosedPnlRows(rows=(row("oid-x2", "-7.15", ts=T0 + 7),))], T0 + 8)
    assert view(out) == [("log", "info"), ("persist", D("-7.15"), False)]
    assert "replaced" in texts(out)[0]
    # the same rows again: de-duplicated
    assert run(engine, [ClosedPnlRows(rows=(row("oid-x2", "-7.15", ts=T0 + 7),))], T0 + 9) == []
    state = engine.risk_state()
    assert state.booked_order_ids == ("oid-x2",)


def test_fees_not_reported_are_estimated_at_the_taker_rate() -> None:
    engine = filled_entry(Side.BUY, fee_config())  # entry fee 0.001 * 1000 = 1.0 (estimated)
    run(
        engine,
        [book(bid=100.99, ask=101.01, ts=T0 + 5), book(bid=101.09, ask=101.11, ts=T0 + 6)],
        T0 + 6,
    )
    assert engine.state is EngineState.CLOSING_POSITION
    out = run(
        engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D("101.1"))], T0 + 7
    )
    # price +11.00, entry fee 1.0, exit fee 0.001 * 1011 = 1.011
    assert view(out)[-1] == ("persist", D("8.989"), False)


def test_the_day_pnl_equals_the_report_net_of_the_same_fills() -> None:
    engine = filled_entry(Side.BUY, fee_config(), fee=D("0.55"))
    run(engine, [book(bid=99.39, ask=99.41, ts=T0 + 5)], T0 + 5)
    run(
        engine,
        [OrderFilled(order_link_id=X2, filled_qty=D(4), avg_price=D("99.4"), fee=D("0.2"))],
        T0 + 6,
    )
    run(
        engine,
        [OrderFilled(order_link_id=X3, filled_qty=D(6), avg_price=D("99.3"), fee=D("0.33"))],
        T0 + 7,
    )
    assert engine.position is None
    ledger = Ledger()
    for ts, fill_side, qty, price, fee in [
        (T0, "Buy", "10.0", "100", "0.55"),
        (T0 + 6, "Sell", "4", "99.4", "0.2"),
        (T0 + 7, "Sell", "6", "99.3", "0.33"),
    ]:
        ledger.add(
            Fill(ts_ms=ts, symbol=SYM, side=fill_side, qty=D(qty), price=D(price), fee=D(fee))
        )
    assert engine.risk.realised_today(T0 + 7) == ledger.net == D("-7.68")


def test_unrealised_loss_counts_the_closing_fee_and_the_entry_fee() -> None:
    # limit 21: price loss 20 + entry fee 1.0 + closing fee 0.98 = 21.98 >= 21 -> halt
    cfg = config(
        stop_loss_pct=5.0,
        risk=RiskLimits(max_daily_loss_usd=D(21), taker_fee_rate=D("0.001")),
    )
    engine = filled_entry(Side.BUY, cfg)
    out = run(engine, [book(bid=97.99, ask=98.01, ts=T0 + 5)], T0 + 5)
    assert view(out)[0] == ("T", "PositionOpen", "Halted")
    assert "daily loss 21.98" in texts(out)[0]
    # price-only, the same move is 20: below the limit (what main booked)
    engine = filled_entry(
        Side.BUY,
        config(stop_loss_pct=5.0, risk=RiskLimits(max_daily_loss_usd=D(21), taker_fee_rate=D(0))),
    )
    out = run(engine, [book(bid=97.99, ask=98.01, ts=T0 + 5)], T0 + 5)
    assert engine.state is EngineState.POSITION_OPEN
    assert not [v for v in view(out) if v[0] == "T"]


def test_rows_of_another_day_or_without_order_id_are_not_counted() -> None:
    engine = ready(fee_config())
    out = run(engine, [ClosedPnlRows(rows=(row("y-1", "-5", ts=T0 - DAY_MS), row("", "-5")))])
    assert out == []
    assert engine.risk.realised_today(T0) == 0


def test_a_new_utc_day_resets_the_realised_total_and_lifts_the_loss_latch() -> None:
    engine = ready(fee_config())
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    out = run(engine, [ClosedPnlRows(rows=(row("m-1", "-150", ts=midnight - 10),))], midnight - 5)
    assert ("T", "Idle", "Halted") in view(out)
    assert view(out)[-1] == ("persist", D(-150), True)
    out = run(engine, [book(ts=midnight + 1)], midnight + 1)
    assert view(out)[:3] == [("log", "info"), ("T", "Halted", "Idle"), ("alert",)]
    assert "daily-loss latch reset" in texts(out)[1]
    assert view(out)[-1] == ("persist", D(0), False)
    assert engine.state is EngineState.IDLE
    # an operator's halt is never lifted by the day
    engine = ready(fee_config())
    run(engine, [book(), momentum_trades(Side.BUY)])
    from scalper.core.model import Halt

    run(engine, [Halt(reason="operator")], midnight - 5)
    run(engine, [book(ts=midnight + 1)], midnight + 1)
    assert engine.state is EngineState.HALTED


def test_the_first_event_of_a_new_day_may_trade_after_the_halt_it_lifts() -> None:
    # The day's end lifts the latch before the handler runs: the handler's own move
    # (here an entry) is checked against the new state's row, not Halted's.
    engine = ready(fee_config())
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    run(engine, [ClosedPnlRows(rows=(row("m-1", "-150", ts=midnight - 10_000),))], midnight - 9_000)
    run(engine, [book(bid=99.99, ask=100.01, ts=midnight - 100)], midnight - 100)
    assert engine.state is EngineState.HALTED
    out = run(engine, [momentum_trades(Side.BUY, ts=midnight + 100)], midnight + 100)
    assert ("T", "Halted", "Idle") in view(out)
    assert engine.state is EngineState.ORDER_PENDING
    assert any(isinstance(c, PlaceOrder) for c in out)


def test_restored_halt_of_the_same_day_starts_halted_and_trades_nothing() -> None:
    state = RiskState(
        day=T0 // DAY_MS,
        realised_net=D(-120),
        booked_order_ids=("oid-a",),
        halted=True,
        halt_reason="daily loss 120 reached limit 100",
    )
    engine = Engine(fee_config(), restored=state)
    assert engine.state is EngineState.HALTED
    out = run(engine, [select(), flat(), no_orders(), book(), momentum_trades(Side.BUY)])
    assert not [c for c in out if isinstance(c, PlaceOrder)]
    assert not [c for c in out if isinstance(c, PersistRiskState)]
    assert "daily loss latch restored" in (engine.halt_reason or "")
    # its booked order ids are not counted again
    assert run(engine, [ClosedPnlRows(rows=(row("oid-a", "-120"),))]) == []
    assert engine.risk.realised_today(T0) == D(-120)
    # an adopted position is still protected (and flattened: halted)
    out = run(engine, [holding(Side.BUY, "1", "100")])
    assert ("protect", SYM, stop(Side.BUY)) in view(out)


def test_restored_state_of_another_day_is_dropped() -> None:
    state = RiskState(
        day=T0 // DAY_MS - 1,
        realised_net=D(-120),
        booked_order_ids=(),
        halted=True,
        halt_reason="x",
    )
    engine = Engine(fee_config(), restored=state)
    out = run(engine, [select()])
    assert ("T", "Halted", "Idle") in view(out)
    assert view(out)[-1] == ("persist", D(0), False)
    assert engine.risk.realised_today(T0) == 0
    # a not-halted state of the same day: realised kept, nothing journaled again
    same = RiskState(day=T0 // DAY_MS, realised_net=D(-20), booked_order_ids=(), halted=False)
    engine = Engine(fee_config(), restored=same)
    out = run(engine, [select()])
    assert engine.state is EngineState.IDLE and view(out)[0] == ("log", "info")
    assert engine.risk.realised_today(T0) == D(-20)
    assert not [c for c in out if isinstance(c, PersistRiskState)]


# ------------------------------------------------------------ hole 3: switch after flat read


@sides
def test_idle_switch_with_an_unconfirmed_flat_waits_for_a_read(side: Side) -> None:
    engine = ready()
    run(engine, [book(), momentum_trades(side)])
    run(engine, [OrderFailed(order_link_id=E1, reason="timeout")])
    out = run(engine, [select(OTHER)])
    assert view(out) == [("log", "info"), ("position?", SYM)]
    assert engine.symbol == SYM
    out = run(engine, [flat()])
    assert view(out) == [("log", "info"), ("subscribe", OTHER), ("position?", OTHER)]


@sides
def test_a_larger_position_read_during_the_close_is_closed_too(side: Side) -> None:
    engine = filled_entry(side)
    run(engine, [select(OTHER)])  # closes 10 first
    assert engine.state is EngineState.CLOSING_POSITION
    # a late fill made it 13 on the exchange; the close of 10 then fills
    run(engine, [attrs.evolve(holding(side, "13.0", "100"), stop_loss=stop(side))])
    out = run(engine, [OrderFilled(order_link_id=X2, filled_qty=D("10.0"), avg_price=D(100))])
    assert view(out) == [
        ("log", "warning"),
        ("protect", SYM, stop(side)),
        ("place", side.opposite, "Market", D("3.0"), None, "IOC", True, X3),
    ]
    assert engine.symbol == SYM and engine.state is EngineState.CLOSING_POSITION


# ------------------------------------------------------------ hole 4: unclear entry


@sides
def test_timed_out_entry_blocks_entries_until_a_position_read(side: Side) -> None:
    engine = ready(config(risk=RiskLimits(cooldown_ms=0, taker_fee_rate=D(0))))
    run(engine, [book(), momentum_trades(side)])
    out = run(engine, [OrderFailed(order_link_id=E1, reason="timeout: outcome unclear")])
    assert view(out) == [("T", "OrderPending", "Idle"), ("position?", SYM)]
    out = run(engine, [book(ts=T0 + 1), momentum_trades(side, ts=T0 + 1)], T0 + 1)
    assert view(out) == [("log", "debug")]
    assert texts(out) == ["entry signal skipped: waiting for position read after an unclear entry"]
    # the read shows the entry did fill after all: adopted, not doubled
    out = run(engine, [holding(side, "10.0", "100")], T0 + 2)
    assert ("T", "Idle", "PositionOpen") in view(out)


# ------------------------------------------------------------ hole 5: market gap


def test_market_gap_resync_clears_the_trade_window() -> None:
    engine = ready()
    run(
        engine,
        [
            book(),
            momentum_trades(Side.BUY).__class__(
                symbol=SYM, trades=momentum_trades(Side.BUY).trades[:9]
            ),
        ],
    )
    assert engine.signals.count == 9
    run(engine, [Resync(reason="public stream reconnected", market_gap=False)])
    assert engine.signals.count == 9
    out = run(engine, [Resync(reason="public stream reconnected", market_gap=True)])
    assert engine.signals.count == 0
    assert "trade window cleared" in texts(out)[0]
