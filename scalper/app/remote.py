"""The control core: one place that answers and obeys the operator, whoever asks.

Three front ends (the HTTP API with its dashboard, ``scalper ctl``, Telegram) are thin:
each turns its input into ``Control.execute(command, origin)`` and shows the ``Reply``.
So a pause from Telegram and a pause from the dashboard are the same event, logged the
same way, with their origin (``tty``, ``http``, ``telegram:<chat id>``).

* ``status`` / ``pnl``: read-only snapshots of the engine and the metrics.
* ``pause`` / ``resume`` / ``flatten``: engine events (``Pause``, ``Resume``,
  ``Flatten``), fed through the strategy runner like any other event, so they are
  serialised with market data and order outcomes. The paused flag is journaled as a
  ``control_state`` record and restored at start-up (``restore_paused``): a pause
  survives a restart like the halt latch does. Flatten also pauses (no re-entry the
  moment the bot is flat); ``resume`` trades again.
* ``stop``: a graceful shutdown, exactly as the first Ctrl+C (``ShutdownRequest``).

Notifications (``Notice``, ``app.notices``) are derived by the watcher task
(``app.watcher``) from the engine's state after every event, never inside the
trading path.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio
from loguru import logger

from ..core.model import EngineState, Flatten, Pause, Resume
from ..core.pnl import Ledger
from ..core.strategy import Engine
from .journal import Journal, read_records
from .metrics import Metrics
from .notices import Notice, NoticeQueue, Notifier
from .shutdown import ShutdownRequest
from .strategy import StrategyRunner
from .watcher import LOSS_WARN_FRACTION, STREAM_DOWN_S, run_watch

__all__ = [
    "COMMANDS",
    "LOSS_WARN_FRACTION",
    "STREAM_DOWN_S",
    "Control",
    "Notice",
    "NoticeQueue",
    "Notifier",
    "Reply",
    "day_net_pnl",
    "restore_paused",
    "run_watch",
]

#: every command the front ends may send
COMMANDS = ("status", "pnl", "pause", "resume", "flatten", "stop")
#: commands that change something (HTTP: POST with the token)
ACTIONS = ("pause", "resume", "flatten", "stop")
#: equity samples kept for the dashboard's sparkline (one per EQUITY_EVERY_S)
EQUITY_POINTS = 720


def day_net_pnl(engine: Engine, now_ms: int) -> Decimal:
    """The day's PnL as the engine's risk gate counts it (realised + unrealised).

    The one accessor the front ends and metrics read it through: when the gate counts
    fees, this is where that shows.
    """
    return -engine.risk.daily_loss(now_ms, engine.unrealised_pnl())


@attrs.frozen(kw_only=True)
class Reply:
    """A command's outcome: ``ok`` False means refused; ``text`` is the short answer."""

    ok: bool
    text: str
    data: dict[str, Any] = attrs.field(factory=dict)


def _num(value: float | None, places: int = 8) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, places)


@attrs.define(kw_only=True, eq=False)
class Control:
    """The commands, the snapshots and the notices of one running bot."""

    runner: StrategyRunner
    shutdown: ShutdownRequest
    journal: Journal
    metrics: Metrics
    #: this session's fills (``wiring.PnlTracker`` feeds it): net PnL and round trips
    pnl: Ledger
    clock_ms: Callable[[], int]
    mode: str
    session_tag: str
    notifier: Notifier = attrs.field(
        default=attrs.Factory(lambda self: Notifier(self.clock_ms), takes_self=True)
    )
    #: (ts_ms, session net PnL incl. unrealised) samples for the sparkline
    equity: deque[tuple[int, float]] = attrs.field(
        init=False, factory=lambda: deque(maxlen=EQUITY_POINTS)
    )

    @property
    def engine(self) -> Engine:
        """The engine (read-only use: every change goes through ``runner.feed``)."""
        return self.runner.engine

    # ------------------------------------------------------------ commands

    async def execute(self, command: str, origin: str) -> Reply:
        """Carry out one command from ``origin``; every command is logged with it."""
        log = logger.bind(origin=origin, command=command)
        if command not in COMMANDS:
            log.warning("command {!r} from {} refused: unknown", command, origin)
            return Reply(ok=False, text=f"unknown command {command!r}")
        if command in ACTIONS:
            log.warning("command {} from {}", command, origin)
        else:
            log.info("command {} from {}", command, origin)
        if command == "status":
            status = self.status()
            return Reply(ok=True, text=status["line"], data=status)
        if command == "pnl":
            pnl = self.pnl_view()
            return Reply(ok=True, text=_pnl_line(pnl), data=pnl)
        if command == "stop":
            self.shutdown.request(f"stop by {origin}")
            return Reply(ok=True, text="stopping: graceful shutdown (orders cancelled)")
        engine = self.engine
        before = engine.paused_by
        if command == "pause":
            await self.runner.feed(Pause(origin=origin))
        elif command == "resume":
            await self.runner.feed(Resume(origin=origin))
        else:
            await self.runner.feed(Flatten(origin=origin))
        if engine.paused_by != before:
            await self.journal.record(
                "control_state",
                paused=engine.paused,
                origin=origin,
                ts=int(self.clock_ms()),
            )
        texts = {
            "pause": "paused: no new entries (exits and stops continue)",
            "resume": "resumed: entries allowed",
            "flatten": "flattening: closing the position now; paused until resume",
        }
        text = texts[command]
        if command == "resume" and engine.state is EngineState.HALTED:
            text = f"resumed, but still halted: {engine.halt_reason}"
        return Reply(ok=True, text=text, data=self.status())

    # ------------------------------------------------------------ snapshots

    def status(self) -> dict[str, Any]:
        """Everything the dashboard and ``/status`` show, JSON-ready."""
        engine = self.engine
        now = int(self.clock_ms())
        book = engine.book
        position = engine.position
        limit = engine.config.risk.max_daily_loss_usd
        day = day_net_pnl(engine, now)
        held: dict[str, Any] | None = None
        if position is not None:
            held = {
                "side": position.side.value,
                "size": str(position.size),
                "entry": None if position.entry_price is None else str(position.entry_price),
                "stop": _num(engine.stop_price),
                "take_profit": _num(engine.target_price),
                "upnl": f"{engine.unrealised_pnl():.4f}",
            }
        m = self.metrics
        status: dict[str, Any] = {
            "mode": self.mode,
            "session": self.session_tag,
            "ts_ms": now,
            "state": engine.state.value,
            "paused": engine.paused,
            "paused_by": engine.paused_by,
            "halted": engine.state is EngineState.HALTED,
            "halt_reason": engine.halt_reason,
            "symbol": engine.symbol,
            "pending_symbol": engine.pending_symbol,
            "bid": _num(book.bid) if book else None,
            "ask": _num(book.ask) if book else None,
            "spread_bps": _num(book.spread_bps, 3) if book else None,
            "book_valid": book.valid if book else None,
            "book_age_ms": now - book.ts_ms if book else None,
            "position": held,
            "day_net_pnl": f"{day:.4f}",
            "session_net_pnl": f"{self.pnl.net:.4f}",
            "daily_loss_limit": str(limit),
            "daily_loss_headroom": f"{limit + min(day, Decimal(0)):.4f}",
            "counters": {
                "orders_placed": m.orders_placed,
                "orders_filled": m.orders_filled,
                "orders_failed": m.orders_failed,
                "entries": m.entries,
                "exits": m.exits,
                "reconnects": m.reconnects,
                "market_dropped": m.market_dropped,
                "parse_errors": m.parse_errors,
                "book_updates": m.book_updates,
                "trade_messages": m.trade_messages,
            },
            "equity": [[ts, value] for ts, value in self.equity],
            "alerts": [
                {"ts_ms": n.ts_ms, "kind": n.kind, "text": n.text}
                for n in list(self.notifier.recent)[-10:]
            ],
        }
        # rendered here, once, for every client: Telegram's /status, ``scalper ctl status``
        status["line"] = _status_line(status)
        return status

    def pnl_view(self) -> dict[str, Any]:
        """The day's and the session's PnL, and the round-trip count."""
        engine = self.engine
        now = int(self.clock_ms())
        return {
            "day_net_pnl": f"{day_net_pnl(engine, now):.4f}",
            "session_net_pnl": f"{self.pnl.net:.4f}",
            "unrealised": f"{engine.unrealised_pnl():.4f}",
            "round_trips": self.pnl.trip_count,
            # after fees, as the report and the panel count them
            "wins": self.pnl.wins,
            "daily_loss_limit": str(engine.config.risk.max_daily_loss_usd),
        }

    def trades(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest round trips, newest first."""
        out = []
        for trip in self.pnl.trips[-limit:][::-1]:
            out.append(
                {
                    "symbol": trip.symbol,
                    "side": trip.side,
                    "qty": str(trip.qty),
                    "entry": str(trip.entry),
                    "exit": str(trip.exit),
                    "pnl": f"{trip.pnl:.4f}",
                    "closed_ms": trip.closed_ms,
                }
            )
        return out


def _status_line(status: dict[str, Any]) -> str:
    flags = []
    if status["paused"]:
        flags.append(f"paused by {status['paused_by']}")
    if status["halted"]:
        flags.append(f"halted: {status['halt_reason']}")
    held = status["position"]
    position = f"{held['side']} {held['size']} @ {held['entry']}" if held else "flat"
    extra = f" ({'; '.join(flags)})" if flags else ""
    return (
        f"{status['state']}{extra} | {status['symbol'] or '-'} | {position} | "
        f"day pnl {status['day_net_pnl']}"
    )


def _pnl_line(pnl: dict[str, Any]) -> str:
    return (
        f"day {pnl['day_net_pnl']} (unrealised {pnl['unrealised']}) | session net "
        f"{pnl['session_net_pnl']} | {pnl['round_trips']} trips, {pnl['wins']} wins"
    )


# ---------------------------------------------------------------- persistence


def last_control_state(journal_path: str) -> dict[str, Any] | None:
    """The latest ``control_state`` record of the journal, or None (no file, none)."""
    if journal_path == ":memory:" or not Path(journal_path).is_file():
        return None
    latest = None
    for record in read_records(journal_path, ("control_state",)):
        latest = dict(record.data)
    return latest


async def restore_paused(runner: StrategyRunner, journal_path: str) -> bool:
    """At start-up, before trading: re-apply a pause the last run left in force.

    Returns True when the bot starts paused. The bot calls this once, after building
    the runner and before the first market event.
    """
    state = await trio.to_thread.run_sync(last_control_state, journal_path)
    if not state or not state.get("paused"):
        return False
    logger.warning(
        "restored pause (paused by {} before the restart): no new entries until resume",
        state.get("origin", "?"),
    )
    await runner.feed(Pause(origin="restored"))
    return True
