"""The engine's shortcuts for market data decide exactly what its general path decides.

``BookUpdate`` and ``TradeTicks`` are nearly every event, so ``Engine`` takes shortcuts on
them: flat, a market event goes straight to the entry step (there are no exits to run);
``handle`` checks the day roll and the risk-state journal inline; a trade frame's trades
enter the signal window as one batch with the running sums in locals. ``General`` below is
the engine without them: every market event through ``_after_market``, the newest trade
time by ``max``, the window fed one trade at a time by the arithmetic the batch replaced,
and the dispatch looking each handler up on the instance (so the overrides run).

Random event sequences (the property tests' exchange model, starting at times that cross
a UTC midnight, with and without a restored risk state) are fed to both engines: every
event must give equal command lists, the same state and the same signal window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.core.engine import TABLE
from scalper.core.machine import EngineError
from scalper.core.model import (
    BookUpdate,
    Command,
    EngineState,
    Event,
    RiskState,
    Side,
    Trade,
    TradeTicks,
    Transition,
)
from scalper.core.pnl import DAY_MS
from scalper.core.signals import SignalWindow
from scalper.core.strategy import Engine, EngineConfig
from scalper.core.table import STAY, Step

from ._engine_helpers import SYM, T0, book, config, flat, momentum_trades, no_orders, select, trades
from .test_strategy_properties import ACTIONS, Harness, _run_random_sequence


class OneByOneWindow(SignalWindow):
    """The signal window fed one trade at a time, with the sums kept on the instance."""

    def add_trades(self, trades: Iterable[Trade]) -> None:
        for trade in trades:
            self.add(trade.price, trade.qty)

    def add(self, price: float, qty: float) -> None:
        window: deque[tuple[float, float]] = self._trades
        window.append((price, qty))
        self._sum_pq += price * qty
        self._sum_q += qty
        self._last_price = price
        self._stale = True
        if len(window) > self.window:
            old_p, old_q = window.popleft()
            self._sum_pq -= old_p * old_q
            self._sum_q -= old_q
            self._evictions += 1
            if self._evictions >= self.window:
                self._evictions = 0
                self._sum_pq = sum(p * q for p, q in window)
                self._sum_q = sum(q for _, q in window)


class General(Engine):
    """The engine with the market-data shortcuts taken out."""

    def __init__(self, config: EngineConfig, *, restored: RiskState | None = None) -> None:
        super().__init__(config, restored=restored)
        self.signals = OneByOneWindow(config.window, config.min_ticks)

    def handle(self, event: Event, now_ms: int) -> list[Command]:
        state = self._state
        row = TABLE[state].get(type(event))
        if row is None:
            raise EngineError(state, event, "not allowed by the transition table")
        out: list[Command] = []
        same_day = self._restored is None and self.risk.book.day == now_ms // DAY_MS
        if not same_day:
            self._roll_day(now_ms, out)
        if self._state is not state:
            row = TABLE[self._state][type(event)]
        step = getattr(self, row.handler.__name__)(event, now_ms, out)
        while step is not STAY:
            self._check_declared(row, event, step)
            self._enter(step, out)
            step = step.then() if step.then is not None else STAY
        halting = self._halting
        key = (self.risk.book.version, halting.loss_latch, halting.latch_reason)
        if key != self._persisted_key:
            self._persist(key, out)
        return out

    def _on_book(self, event: BookUpdate, now_ms: int, out: list[Command]) -> Step:
        top = event.top
        if top.symbol != self._symbol:
            return self._ignore_other(top.symbol, "book", now_ms, out)
        self._book = top
        return self._after_market(now_ms, out, entries=True)

    def _on_trades(self, event: TradeTicks, now_ms: int, out: list[Command]) -> Step:
        if event.symbol != self._symbol:
            return self._ignore_other(event.symbol, "trades", now_ms, out)
        if not event.trades:
            return STAY
        self.signals.add_trades(event.trades)
        newest = max(trade.ts_ms for trade in event.trades)
        if self._last_trade_ts is None or newest > self._last_trade_ts:
            self._last_trade_ts = newest
        return self._after_market(now_ms, out, entries=True)


def _window(engine: Engine) -> tuple[Any, ...]:
    w = engine.signals
    return (list(w._trades), w._sum_pq, w._sum_q, w._evictions, w.last_price, w.momentum)


@attrs.define
class Twin(Harness):
    """The property harness, feeding every event to ``General`` too and comparing."""

    general: Engine | None = None
    compared: int = 0

    def feed(self, event: Event) -> list[Command]:
        general = self.general
        assert general is not None
        now = self.now
        expected = general.handle(event, now)
        out = super().feed(event)
        assert out == expected, f"{type(event).__name__} at {now}"
        assert self.engine.state is general.state
        assert _window(self.engine) == _window(general)
        self.compared += 1
        return out

    def check(self, before: EngineState, symbol: str | None, out: list[Command]) -> None:
        lifted = any(isinstance(c, Transition) and c.before is EngineState.HALTED for c in out)
        if not lifted:  # (a new UTC day lifting a daily-loss halt is the one way out of
            super().check(before, symbol, out)  # Halted, which the model does not know)


#: UTC midnights the runs may cross (a run advances at most 80 * 2 s)
_MIDNIGHT = (T0 // DAY_MS + 1) * DAY_MS


def _restored(kind: int) -> RiskState | None:
    day = T0 // DAY_MS
    if kind == 0:
        return None
    if kind == 1:  # today's, the loss latch set: starts Halted until midnight
        return RiskState(
            day=day, realised_net=Decimal(-120), booked_order_ids=(), halted=True, halt_reason="x"
        )
    return RiskState(day=day - 1, realised_net=Decimal(-5), booked_order_ids=(), halted=False)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.data(),
    st.booleans(),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([T0, _MIDNIGHT - 30_000, _MIDNIGHT - 500]),
    st.integers(min_value=0, max_value=2),
)
def test_random_sequences_decide_the_same_on_both_paths(
    data: st.DataObject, flatten: bool, halt_draw: int, start: int, restored: int
) -> None:
    twins: list[Twin] = []

    def make(cfg: EngineConfig) -> Harness:
        state = _restored(restored)
        twin = Twin(Engine(cfg, restored=state), now=start, general=General(cfg, restored=state))
        twins.append(twin)
        return twin

    _run_random_sequence(data, flatten, halt_draw, ACTIONS, make)
    assert twins and twins[0].compared > 0


def test_the_comparison_can_fail() -> None:
    """A general path that decides otherwise is caught (here: no trade time kept)."""

    class Forgetful(General):
        def _on_trades(self, event: TradeTicks, now_ms: int, out: list[Command]) -> Step:
            self.signals.add_trades(event.trades)
            return self._after_market(now_ms, out, entries=True)

    cfg = config()
    twin = Twin(Engine(cfg), general=Forgetful(cfg))
    for event in (select(SYM), flat(), no_orders(), book(), trades([100.0] * 4)):
        twin.feed(event)
    with pytest.raises(AssertionError):
        twin.feed(momentum_trades(Side.BUY))  # ours enters; the forgetful one sees no trades


_PRICES = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(_PRICES, _PRICES, st.integers(min_value=-5_000, max_value=5_000)),
            max_size=6,
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=1, max_value=12),
)
def test_trade_frames_in_any_order_give_the_same_window_and_trade_time(
    frames: list[list[tuple[float, float, int]]], window: int
) -> None:
    """Frames of trades whose times are out of order, and floats of every size: the
    batch keeps the same sums bit for bit and the same newest trade time."""
    cfg = config(window=window, min_ticks=1)
    twin = Twin(Engine(cfg), general=General(cfg))
    for event in (select(SYM), flat(), no_orders(), book()):
        twin.feed(event)
    for rows in frames:
        event = TradeTicks(
            symbol=SYM,
            trades=tuple(
                Trade(symbol=SYM, price=p, qty=q, side=Side.SELL, ts_ms=T0 + dt)
                for p, q, dt in rows
            ),
        )
        twin.feed(event)
        assert twin.engine._last_trade_ts == twin.general._last_trade_ts  # type: ignore[union-attr]
