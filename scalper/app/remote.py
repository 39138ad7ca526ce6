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

Notifications (``Notice``) come from ``Notifier``: start, stop (clean or not), entry,
exit with its net PnL, halt with its cause, every ``ALERT`` log line, a market stream
silent for more than ``STREAM_DOWN_S``, and a day's loss within 20 % of its limit. The
watcher task derives them from the engine's state after every event, never inside
the trading path; consumers read them from bounded drop-oldest queues, so a slow
consumer (Telegram down) costs nothing but dropped, counted notices.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio
from loguru import logger

from ..core.model import EngineState, Flatten, Pause, Resume
from ..core.pnl import RoundTrip
from ..core.strategy import Engine
from .journal import Journal, read_records
from .metrics import Metrics
from .shutdown import ShutdownRequest
from .strategy import StrategyRunner

__all__ = [
    "COMMANDS",
    "LOSS_WARN_FRACTION",
    "STREAM_DOWN_S",
    "Control",
    "Notice",
    "NoticeQueue",
    "Notifier",
    "PnlSource",
    "Reply",
    "day_net_pnl",
    "restore_paused",
    "run_watch",
]

#: every command the front ends may send
COMMANDS = ("status", "pnl", "pause", "resume", "flatten", "stop")
#: commands that change something (HTTP: POST with the token)
ACTIONS = ("pause", "resume", "flatten", "stop")
#: a market stream silent this long is reported
STREAM_DOWN_S = 30.0
#: a day's loss at this fraction of the limit is reported (within 20 %) ...
LOSS_WARN_FRACTION = Decimal("0.8")
#: ... once, until it falls back below this fraction
LOSS_REARM_FRACTION = Decimal("0.7")
#: the watcher's periodic checks (stream, loss, equity sample)
WATCH_INTERVAL_S = 1.0
#: how long an exit waits for its fills' fees before its notice goes out without them
EXIT_PNL_WAIT_S = 3.0
#: equity samples kept for the dashboard's sparkline (one per EQUITY_EVERY_S)
EQUITY_POINTS = 720
EQUITY_EVERY_S = 5.0
#: notices kept for the dashboard ("last alerts")
RECENT_NOTICES = 50


class PnlSource(Protocol):
    """The session's fill ledger (``bot.PnlTracker``): net PnL and round trips."""

    @property
    def net(self) -> Decimal:
        """Realised PnL minus fees of this session."""
        ...

    def trips(self) -> Sequence[RoundTrip]:
        """Round trips closed this session, oldest first."""
        ...


def day_net_pnl(engine: Engine, now_ms: int) -> Decimal:
    """The day's PnL as the engine's risk gate counts it (realised + unrealised).

    The one accessor the front ends and metrics read it through: when the gate counts
    fees, this is where that shows.
    """
    return -engine.risk.daily_loss(now_ms, engine.unrealised_pnl())


@attrs.frozen(kw_only=True)
class Notice:
    """One notification: what happened (``kind``), in one human line."""

    #: start | stop | entry | exit | halt | alert | stream | loss
    kind: str
    text: str
    ts_ms: int


class NoticeQueue:
    """A bounded queue for one consumer: when full, the oldest notice is dropped."""

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self._items: deque[Notice] = deque()
        self._maxlen = maxlen
        self._ready = trio.Event()
        #: notices dropped because the consumer was behind
        self.dropped = 0

    def put(self, notice: Notice) -> None:
        """Queue ``notice`` without ever waiting (drop the oldest when full)."""
        if len(self._items) >= self._maxlen:
            self._items.popleft()
            self.dropped += 1
        self._items.append(notice)
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    async def get_all(self) -> list[Notice]:
        """Wait for at least one notice; take everything queued (a burst, coalesced)."""
        while not self._items:
            await self._ready.wait()
            self._ready = trio.Event()
        items = list(self._items)
        self._items.clear()
        return items


class Notifier:
    """Fans notices out to the consumers' queues and keeps the latest for the dashboard."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._queues: list[NoticeQueue] = []
        self.recent: deque[Notice] = deque(maxlen=RECENT_NOTICES)
        self._sink: int | None = None

    @property
    def dropped(self) -> int:
        """Notices dropped by every consumer queue so far."""
        return sum(queue.dropped for queue in self._queues)

    def subscribe(self, maxlen: int = 100) -> NoticeQueue:
        """A new consumer queue receiving every notice from now on."""
        queue = NoticeQueue(maxlen)
        self._queues.append(queue)
        return queue

    def publish(self, kind: str, text: str) -> None:
        """Send a notice to every consumer. Never waits, never raises for a consumer."""
        notice = Notice(kind=kind, text=text, ts_ms=int(self._clock_ms()))
        self.recent.append(notice)
        for queue in self._queues:
            queue.put(notice)

    def capture_alerts(self) -> None:
        """From now on, every ``ALERT:`` log line (from any task) becomes a notice.

        A loguru sink, so ALERT lines need no second code path. Lines logged outside
        the trio thread (a worker thread) are skipped: the queues are not thread-safe.
        ``release_alerts`` removes the sink.
        """
        if self._sink is not None:
            return

        def sink(message: Any) -> None:
            text: str = message.record["message"]
            if not text.startswith("ALERT: "):
                return
            try:
                trio.lowlevel.current_task()
            except RuntimeError:
                return
            body = text[len("ALERT: ") :]
            if body.startswith("halted: "):
                return  # the halt notice says it, with its cause
            self.publish("alert", body)

        self._sink = logger.add(sink, level="WARNING", format="{message}", catch=True)

    def release_alerts(self) -> None:
        """Stop turning ALERT lines into notices (idempotent)."""
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None


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


class Control:
    """The commands, the snapshots and the notices of one running bot."""

    def __init__(
        self,
        *,
        runner: StrategyRunner,
        shutdown: ShutdownRequest,
        journal: Journal,
        metrics: Metrics,
        pnl: PnlSource,
        clock_ms: Callable[[], int],
        mode: str,
        session_tag: str,
        notifier: Notifier | None = None,
    ) -> None:
        self.runner = runner
        self.shutdown = shutdown
        self.journal = journal
        self.metrics = metrics
        self.pnl = pnl
        self.clock_ms = clock_ms
        self.mode = mode
        self.session_tag = session_tag
        self.notifier = notifier or Notifier(clock_ms)
        #: (ts_ms, session net PnL incl. unrealised) samples for the sparkline
        self.equity: deque[tuple[int, float]] = deque(maxlen=EQUITY_POINTS)

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
            return Reply(ok=True, text=_status_line(status), data=status)
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
        return {
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

    def pnl_view(self) -> dict[str, Any]:
        """The day's and the session's PnL, and the round-trip count."""
        engine = self.engine
        now = int(self.clock_ms())
        trips = self.pnl.trips()
        return {
            "day_net_pnl": f"{day_net_pnl(engine, now):.4f}",
            "session_net_pnl": f"{self.pnl.net:.4f}",
            "unrealised": f"{engine.unrealised_pnl():.4f}",
            "round_trips": len(trips),
            "wins": sum(1 for t in trips if t.pnl > 0),
            "daily_loss_limit": str(engine.config.risk.max_daily_loss_usd),
        }

    def trades(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest round trips, newest first."""
        out = []
        for trip in list(self.pnl.trips())[-limit:][::-1]:
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


# ---------------------------------------------------------------- watcher


@attrs.define
class _Seen:
    state: EngineState | None = None
    holding: bool = False
    net_at_entry: Decimal = Decimal(0)
    trips_at_exit: int = 0
    exit_at: float | None = None
    exit_text: str = ""
    market_count: int = -1
    market_since: float = 0.0
    stream_down: bool = False
    loss_warned: bool = False
    equity_at: float = -math.inf


async def run_watch(
    control: Control,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Derive notices from the engine after every event (and every second) until cancelled."""
    seen = _Seen(state=control.engine.state, holding=control.engine.position is not None)
    seen.market_since = trio.current_time()
    task_status.started()
    runner = control.runner

    def changed(engine: Engine) -> bool:
        return engine.state is not seen.state or (engine.position is not None) != seen.holding

    while True:
        with trio.move_on_after(WATCH_INTERVAL_S):
            await runner.wait_until(changed)
        _check(control, seen, trio.current_time())


def _check(control: Control, seen: _Seen, now_s: float) -> None:
    """One pass of every notice rule."""
    engine = control.engine
    publish = control.notifier.publish
    position = engine.position
    symbol = engine.symbol or "-"
    if position is not None and not seen.holding:
        seen.holding = True
        seen.net_at_entry = control.pnl.net
        seen.exit_at = None
        entry = position.entry_price if position.entry_price is not None else "?"
        publish(
            "entry",
            f"entry {position.side.value} {position.size} {symbol} @ {entry} "
            f"(stop {_fmt(engine.stop_price)}, take-profit {_fmt(engine.target_price)})",
        )
    elif position is None and seen.holding:
        seen.holding = False
        seen.exit_at = now_s
        seen.trips_at_exit = len(control.pnl.trips())
        seen.exit_text = f"exit {symbol}"
    if seen.exit_at is not None:
        # the close's fill (with its fee) is booked shortly after the engine is flat
        booked = len(control.pnl.trips()) > seen.trips_at_exit
        if booked or now_s - seen.exit_at >= EXIT_PNL_WAIT_S:
            net = control.pnl.net - seen.net_at_entry
            trips = control.pnl.trips()
            detail = ""
            if booked and trips:
                trip = trips[-1]
                detail = f" {trip.side} {trip.qty} {trip.entry} -> {trip.exit}"
            publish("exit", f"{seen.exit_text}{detail}: net pnl {net:.4f}")
            seen.exit_at = None
    if engine.state is not seen.state:
        if engine.state is EngineState.HALTED:
            publish("halt", f"halted: {engine.halt_reason}")
        seen.state = engine.state
    metrics = control.metrics
    count = metrics.book_updates + metrics.trade_messages
    if count != seen.market_count:
        if seen.stream_down:
            publish("stream", f"market stream back after {now_s - seen.market_since:.0f} s")
        seen.market_count, seen.market_since, seen.stream_down = count, now_s, False
    elif engine.symbol and not seen.stream_down and now_s - seen.market_since > STREAM_DOWN_S:
        seen.stream_down = True
        publish("stream", f"market stream down: no data for {STREAM_DOWN_S:.0f} s on {symbol}")
    now_ms = int(control.clock_ms())
    limit = engine.config.risk.max_daily_loss_usd
    loss = engine.risk.daily_loss(now_ms, engine.unrealised_pnl())
    if not seen.loss_warned and loss >= limit * LOSS_WARN_FRACTION:
        seen.loss_warned = True
        publish("loss", f"daily loss {loss:.2f} is within 20 % of the limit {limit}")
    elif seen.loss_warned and loss < limit * LOSS_REARM_FRACTION:
        seen.loss_warned = False
    if now_s - seen.equity_at >= EQUITY_EVERY_S:
        seen.equity_at = now_s
        value = control.pnl.net + engine.unrealised_pnl()
        control.equity.append((now_ms, float(value)))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"
