"""Shared builders for the engine tests: events in, a compact view of commands out."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from scalper.core.model import (
    Alert,
    BookTop,
    BookUpdate,
    CancelOrder,
    Command,
    Event,
    Instrument,
    Log,
    OpenOrders,
    PersistRiskState,
    PlaceOrder,
    PositionSnapshot,
    ProtectPosition,
    RequestClosedPnl,
    RequestPosition,
    Side,
    Subscribe,
    SymbolSelected,
    Trade,
    TradeTicks,
    Transition,
)
from scalper.core.risk import RiskLimits
from scalper.core.strategy import Engine, EngineConfig

D = Decimal
SYM = "SOLUSDT"
OTHER = "XRPUSDT"
T0 = 1_700_000_000_000


def instrument(symbol: str = SYM, **kw: Any) -> Instrument:
    base: dict[str, Any] = {
        "symbol": symbol,
        "tick_size": D("0.01"),
        "qty_step": D("0.1"),
        "min_qty": D("0.1"),
        "max_qty": D(10_000),
        "max_mkt_qty": D(5_000),
        "min_notional": D(5),
    }
    base.update(kw)
    return Instrument(**base)


def config(**kw: Any) -> EngineConfig:
    base: dict[str, Any] = {
        "session_tag": "t1",
        "window": 10,
        "min_ticks": 5,
        "momentum_threshold": 0.001,
        "max_spread_bps": 20.0,
        "position_usd": D(1000),
        "stop_loss_pct": 0.5,
        "take_profit_pct": 1.0,
        "stale_ms": 500,
        "close_retry_backoff_ms": 1_000,
        "risk": RiskLimits(
            max_position_usd=D(5000),
            max_daily_loss_usd=D(100),
            max_orders_per_minute=20,
            cooldown_ms=3_000,
            # fees are tested on their own (test_engine_safety); price logic here
            taker_fee_rate=D(0),
        ),
    }
    base.update(kw)
    return EngineConfig(**base)


def top(
    bid: float = 99.99,
    ask: float = 100.01,
    *,
    size: float = 500.0,
    ts: int = T0,
    valid: bool = True,
    symbol: str = SYM,
) -> BookTop:
    return BookTop(
        symbol=symbol, bid=bid, bid_size=size, ask=ask, ask_size=size, ts_ms=ts, valid=valid
    )


def book(**kw: Any) -> BookUpdate:
    return BookUpdate(top=top(**kw))


def trades(prices: Iterable[float], *, ts: int = T0, symbol: str = SYM) -> TradeTicks:
    return TradeTicks(
        symbol=symbol,
        trades=tuple(
            Trade(symbol=symbol, price=p, qty=1.0, side=Side.BUY, ts_ms=ts) for p in prices
        ),
    )


def momentum_trades(side: Side, *, ts: int = T0, symbol: str = SYM) -> TradeTicks:
    """Nine trades at 100 then one 1 % away: |momentum| ~ 0.009, sign by side."""
    last = 101.0 if side is Side.BUY else 99.0
    return trades([100.0] * 9 + [last], ts=ts, symbol=symbol)


def flat(symbol: str = SYM) -> PositionSnapshot:
    return PositionSnapshot(symbol=symbol, side=None, size=D(0))


def holding(side: Side, size: str, price: str, symbol: str = SYM) -> PositionSnapshot:
    return PositionSnapshot(symbol=symbol, side=side, size=D(size), avg_price=D(price))


def no_orders(symbol: str = SYM) -> OpenOrders:
    return OpenOrders(symbol=symbol, order_link_ids=())


def select(symbol: str = SYM, **kw: Any) -> SymbolSelected:
    return SymbolSelected(symbol=symbol, instrument=instrument(symbol, **kw))


def run(engine: Engine, events: Iterable[Event], now: int = T0) -> list[Command]:
    out: list[Command] = []
    for event in events:
        out.extend(engine.handle(event, now))
    return out


def ready(cfg: EngineConfig | None = None, **instr: Any) -> Engine:
    """An engine trading SYM, reconciled, Idle, with no market data yet."""
    engine = Engine(cfg or config())
    run(engine, [select(SYM, **instr), flat(), no_orders()])
    return engine


def view(commands: Iterable[Command]) -> list[tuple[Any, ...]]:
    """A compact, exact view of commands (Log/Transition/Alert text checked separately)."""
    out: list[tuple[Any, ...]] = []
    for c in commands:
        if isinstance(c, PlaceOrder):
            i = c.intent
            out.append(
                (
                    "place",
                    i.side,
                    i.order_type.value,
                    i.qty,
                    i.price,
                    i.time_in_force.value,
                    i.reduce_only,
                    i.order_link_id,
                )
            )
        elif isinstance(c, CancelOrder):
            out.append(("cancel", c.symbol, c.order_link_id))
        elif isinstance(c, Transition):
            out.append(("T", c.before.value, c.after.value))
        elif isinstance(c, Log):
            out.append(("log", c.level))
        elif isinstance(c, Alert):
            out.append(("alert",))
        elif isinstance(c, Subscribe):
            out.append(("subscribe", c.symbol))
        elif isinstance(c, RequestPosition):
            out.append(("position?", c.symbol))
        elif isinstance(c, ProtectPosition):
            out.append(("protect", c.symbol, c.stop_loss))
        elif isinstance(c, RequestClosedPnl):
            out.append(("pnl?", c.symbol))
        elif isinstance(c, PersistRiskState):
            out.append(("persist", c.state.realised_net, c.state.halted))
        else:  # pragma: no cover - every command type is listed above
            raise AssertionError(c)
    return out


def texts(commands: Iterable[Command]) -> list[str]:
    """The human text of Log, Alert and Transition commands."""
    out: list[str] = []
    for c in commands:
        if isinstance(c, Log | Alert):
            out.append(c.message)
        elif isinstance(c, Transition):
            out.append(c.cause)
    return out
