"""What the operator sees: a live panel in a terminal, summaries in a log.

In a terminal (a foreground run, or tmux on a VPS) the screen is split in two: a
compact header pinned at the top (mode, state, symbol, book, position and its stop,
PnL and loss headroom, counters, the last alert) and the log scrolling below it.
The panel itself (``StatusConsole``, the header's drawing) is ``app.panel``; this
module holds what it shows (``StatusFacts``, ``PanelView``, ``panel_view``) and the
status task that refreshes it.

When output is not a terminal (systemd, a pipe, CI) there is no panel: a summary log
line every ``summary_interval_s`` carries the same facts, greppable. Either way the
task also reports the state to systemd (``STATUS=``) through the ``Notifier``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import trio
from loguru import logger

from . import panel
from .metrics import Metrics
from .panel import HEADER_ROWS, StatusConsole

if TYPE_CHECKING:
    from loguru import Message

    from ..core.strategy import Engine
    from .sdnotify import Notifier

__all__ = ["HEADER_ROWS", "PanelView", "StatusConsole", "StatusFacts", "panel_view", "run_status"]

_DAY_MS = 86_400_000


@attrs.define
class StatusFacts:
    """What the app knows beyond the engine and the counters; tasks fill it in.

    ``stop_on_exchange`` is None until a task that checks the exchange's stop of the
    open position sets it (shown as ``?``). ``net_by_day`` is this run's realised PnL
    after fees per UTC day (epoch day number), from the fills.
    """

    mode: str = "sim"
    stop_on_exchange: bool | None = None
    last_alert: str | None = None
    trades: int = 0
    wins: int = 0
    net_by_day: dict[int, Decimal] = attrs.field(factory=dict)

    def add_net(self, ts_ms: int, amount: Decimal) -> None:
        """Book a fill's effect on the net (realised PnL minus its fee) on its UTC day."""
        day = ts_ms // _DAY_MS
        self.net_by_day[day] = self.net_by_day.get(day, Decimal(0)) + amount

    def net_today(self, now_ms: int) -> Decimal:
        """Realised PnL after fees today (UTC) in this run."""
        return self.net_by_day.get(now_ms // _DAY_MS, Decimal(0))


@attrs.frozen(kw_only=True)
class PanelView:
    """One frame of the header: plain values, rendered by ``render_header``."""

    mode: str
    state: str
    #: "running", "cooling down 12 s", "HALTED: <why>", ...
    activity: str
    symbol: str | None = None
    bid: float | None = None
    ask: float | None = None
    book_age_ms: int | None = None
    book_valid: bool = True
    position: str = "flat"
    entry: Decimal | None = None
    stop: float | None = None
    stop_on_exchange: bool | None = None
    upnl: Decimal | None = None
    day_net: Decimal | None = None
    headroom: Decimal | None = None
    trades: int = 0
    wins: int = 0
    msgs_per_s: float = 0.0
    drops: int = 0
    reconnects: int = 0
    last_alert: str | None = None

    @property
    def spread_bps(self) -> float | None:
        """Spread in basis points of the mid, None without a two-sided book."""
        if self.bid is None or self.ask is None or self.bid <= 0 or self.ask <= 0:
            return None
        mid = (self.bid + self.ask) / 2
        return (self.ask - self.bid) / mid * 10_000

    @property
    def win_rate(self) -> float | None:
        """Winning round trips / round trips, None before the first."""
        return self.wins / self.trades if self.trades else None


def panel_view(
    engine: Engine, facts: StatusFacts, metrics: Metrics, now_ms: int, msgs_per_s: float
) -> PanelView:
    """The header's values, read from the engine's public view, the facts and counters."""
    risk = engine.risk
    position = engine.position
    state = engine.state.value
    # an engine that can be paused (not halted) says why through ``pause_reason``
    paused = getattr(engine, "pause_reason", None)
    if engine.halt_reason is not None:
        activity = f"HALTED: {engine.halt_reason}"
    elif isinstance(paused, str) and paused:
        activity = f"PAUSED: {paused}"
    else:
        until = risk.cooldown_until_ms
        activity = (
            f"cooling down {(until - now_ms) / 1000:.0f} s"
            if until is not None and until > now_ms
            else "running"
        )
    # The engine keeps the book top it decides on; read it defensively, it is not (yet)
    # part of its public view.
    book: Any = getattr(engine, "book", None) or getattr(engine, "_book", None)
    bid = ask = None
    age = None
    valid = True
    if book is not None and getattr(book, "symbol", None) == engine.symbol:
        bid, ask, valid = float(book.bid), float(book.ask), bool(book.valid)
        age = max(0, now_ms - int(book.ts_ms))
    held, entry, stop, upnl = "flat", None, None, None
    if position is not None:
        held = f"{position.side.value} {position.size}"
        entry = position.entry_price
        stop = _stop_price(engine)
        upnl = _unrealised(engine)
    # the net after fees, from the fills; the headroom is the risk gate's own measure
    # (what halts the bot: realised + unrealised, today)
    day_net = facts.net_today(now_ms) + (upnl or Decimal(0))
    headroom = risk.limits.max_daily_loss_usd - risk.daily_loss(now_ms, upnl or Decimal(0))
    on_exchange = facts.stop_on_exchange
    if on_exchange is None:  # an engine that tracks the exchange-side stop says so
        flag = getattr(engine, "stop_on_exchange", None)
        on_exchange = flag if isinstance(flag, bool) else None
    return PanelView(
        mode=facts.mode,
        state=state,
        activity=activity,
        symbol=engine.symbol,
        bid=bid,
        ask=ask,
        book_age_ms=age,
        book_valid=valid,
        position=held,
        entry=entry,
        stop=stop,
        stop_on_exchange=on_exchange if position is not None else None,
        upnl=upnl,
        day_net=day_net,
        headroom=headroom,
        trades=facts.trades,
        wins=facts.wins,
        msgs_per_s=msgs_per_s,
        drops=metrics.market_dropped,
        reconnects=metrics.reconnects,
        last_alert=facts.last_alert,
    )


def _stop_price(engine: Engine) -> float | None:
    stop = getattr(engine, "stop_price", None)
    if isinstance(stop, int | float):
        return float(stop)
    stop = getattr(engine, "_stop", None)
    return float(stop) if isinstance(stop, int | float) else None


def _unrealised(engine: Engine) -> Decimal | None:
    compute = getattr(engine, "unrealised", None) or getattr(engine, "_unrealised", None)
    if compute is None:
        return None
    value = compute() if callable(compute) else compute
    return value if isinstance(value, Decimal) else None


async def run_status(
    metrics: Metrics,
    describe: Callable[[], str],
    console: StatusConsole | None,
    *,
    view: Callable[[float], PanelView] | None = None,
    notifier: Notifier | None = None,
    facts: StatusFacts | None = None,
    refresh_s: float = 1.0,
    summary_interval_s: float = 30.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Redraw the panel (terminal) or log a summary (no terminal) until cancelled.

    ``describe`` returns the trading part (state, symbol, position) as one line: the
    summary's and systemd's ``STATUS=``. ``view(msgs_per_s)`` builds the panel's
    header. Alert lines seen in the log become ``facts.last_alert``.
    """
    alert_sink = _watch_alerts(facts) if facts is not None else None
    if console is not None:
        console.start()
    task_status.started()
    last_count = metrics.book_updates + metrics.trade_messages
    last_time = trio.current_time()
    next_summary = last_time + summary_interval_s
    try:
        while True:
            if notifier is not None:
                notifier.status(describe())
            now = trio.current_time()
            count = metrics.book_updates + metrics.trade_messages
            rate = (count - last_count) / (now - last_time) if now > last_time else 0.0
            last_count, last_time = count, now
            if console is not None:
                if view is not None:
                    console.show(view(rate))
                # between frames, draw log lines a burst held back (REDRAW_MIN_S)
                frame_end = now + refresh_s
                while (left := frame_end - trio.current_time()) > 0:
                    await trio.sleep(min(panel.REDRAW_MIN_S, left))
                    console.redraw_if_dirty()
                continue
            if now >= next_summary:
                next_summary += summary_interval_s
                logger.info("status: {} | {}", describe(), metrics.summary())
            await trio.sleep(refresh_s)
    finally:
        if alert_sink is not None:
            logger.remove(alert_sink)
        if console is not None:
            console.stop()


def _watch_alerts(facts: StatusFacts) -> int:
    """A log handler keeping the latest ``ALERT:`` line in ``facts.last_alert``."""

    def sink(message: Message) -> None:
        text = message.record["message"]
        if text.startswith("ALERT: "):
            facts.last_alert = f"{message.record['time']:%H:%M:%S} {text[len('ALERT: ') :]}"

    return logger.add(sink, level="WARNING", format="{message}", catch=True)
