"""The chaos soak: ``scalper run`` against ``scalper exchange`` (two processes) under a
seeded schedule of every fault, with the invariants checked while it runs.

Black-box: the driver sees only what an operator sees — the exchange's ``/sim/state``
and signed REST (closed PnL), the bot's ``/api/status``, its output, its ``/proc`` entry
and its journal file. Every ~0.5 s it polls both sides and checks:

* position: for every symbol, the bot's position (symbol, side, size) equals the
  exchange's; a mismatch is a violation only when it lasts longer than
  ``POSITION_LAG_S`` (the bot learns of a fill or an outside close through its private
  stream or its next reconcile, and a fault may delay both);
* one live order per intent: no two open orders share an ``orderLinkId``, and no
  ``orderLinkId`` ever names two exchange orders (history accumulated over the run);
* protection: every open position carries an exchange stop (``stopLoss``) within
  ``STOP_WITHIN_S`` of the first poll that saw it;
* at every halt, once the bot is flat, its day's net PnL equals the sum of the
  exchange's closed-PnL rows (net of fees) booked since the last ``--reset-halt``,
  within a cent (bounded wait ``HALT_PNL_WITHIN_S``);
* the bot never exits unless the schedule made it (kill -9, journal lock) and never
  prints a traceback or a control-channel-full line;
* at the end (SIGINT): exit 0, nothing of ours open or working;
* RSS of the last process lifetime (the schedule keeps the last 40 % of the run free
  of restarts): the mean of its last fifth within 10 % of its second fifth.

Faults: every kind of ``scalper.sim.faults`` (but ``clear``), plus ``kill9`` (SIGKILL,
restart on the same journal), ``stop_trigger`` (kill -9 while holding, a price jump
through the exchange stop while the bot is down, restart: the bot must book the loss
and halt; then it is restarted with ``--reset-halt``), ``journal_lock`` (another
process holds SQLite's exclusive lock on the journal for 12 s, so the bot's writes are
refused — ``database is locked`` after SQLite's 5 s busy wait — and the bot stops as
it must when its journal fails; it is restarted once the lock is gone) and
``symbol_switch`` (while holding, a price jump on another symbol makes it the scanner's
best by far: the bot must close first, then switch).

Recovery of a fault: the time from its injection to the first poll at which the bot
is healthy again — its API answers, its book is valid and under 3 s old, and no
position or stop mismatch is pending.

Run: ``python -m tests.soak.driver --seconds 600 [--seed N]`` or through pytest
(``tests/soak/test_soak.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from loguru import logger

from scalper.bybit.rest import BybitRest, Credentials

from ..bot.test_process import FAST_ENV, Proc

POLL_S = 0.5
POSITION_LAG_S = 20.0
STOP_WITHIN_S = 5.0
HALT_PNL_WITHIN_S = 30.0
HEALTHY_BOOK_AGE_MS = 3000
TOKEN = "soak-token-0123456789"
KEY, SECRET = "sim-key", "sim-secret"

#: the strategy trades every few seconds on the seeded market, in small sizes, so that a
#: loss only halts it when the schedule makes one (a jump through the exchange stop)
BOT_ENV = {
    **FAST_ENV,
    "SCALPER_STRATEGY__WINDOW": "30",
    "SCALPER_STRATEGY__MIN_TICKS": "10",
    "SCALPER_STRATEGY__MOMENTUM_THRESHOLD": "0.0003",
    "SCALPER_STRATEGY__MAX_HOLD_S": "6",
    "SCALPER_STRATEGY__POSITION_USD": "100",
    "SCALPER_RISK__MAX_DAILY_LOSS_USD": "20",
    "SCALPER_RISK__MAX_ORDERS_PER_MINUTE": "60",
    "SCALPER_HTTP__TOKEN": TOKEN,
}

SIM_KINDS = (
    "ws_disconnect",
    "ws_silence",
    "malformed_ws",
    "out_of_order_ws",
    "latency",
    "http_status",
    "timeout",
    "ret_code",
    "drop_private_push",
    "close_position",
    "price_jump",
)
PROCESS_KINDS = ("kill9", "stop_trigger", "journal_lock", "symbol_switch")


def _jump_needed(row: dict[str, Any], rival: float) -> float:
    """The price jump (%) after which ``row``'s scanner score (turnover x |24 h change|)
    is 1.5x ``rival``'s, with a margin."""
    pcnt = float(row["price24hPcnt"])
    return (1.5 * rival / max(float(row["turnover24h"]), 1.0) - pcnt) * 100 + 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


async def _closed_pnl(url: str) -> list[tuple[str, Decimal]]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        rest = BybitRest(http, Credentials(api_key=KEY, api_secret=SECRET))
        await rest.sync_clock()
        day_start = rest.now_ms() // 86_400_000 * 86_400_000
        rows = await rest.closed_pnl(start_ms=day_start)
    return [(r.order_id, r.closed_pnl) for r in rows]


def closed_pnl(url: str) -> list[tuple[str, Decimal]]:
    """(orderId, closedPnl) of today's closed-PnL rows, read as the bot reads them."""
    logger.disable("scalper")  # the client's clock-sync lines are not the soak's output
    try:
        return trio.run(_closed_pnl, url)
    finally:
        logger.enable("scalper")


@attrs.define
class Exchange:
    proc: Proc
    url: str

    @classmethod
    def start(cls, seed: int, *extra: str) -> Exchange:
        proc = Proc(["exchange", "--port", "0", "--seed", str(seed), *extra])
        url = proc.wait_line(r"(http://127\.0\.0\.1:\d+)", timeout=30).group(1)
        return cls(proc, url)

    def stop(self) -> None:
        if self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGINT)
            with contextlib.suppress(Exception):
                self.proc.popen.wait(timeout=10)
        self.proc.stop()

    def state(self) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/sim/state", timeout=10)
        reply.raise_for_status()
        state: dict[str, Any] = reply.json()
        return state

    def inject(self, fault: dict[str, Any]) -> dict[str, Any]:
        reply = httpx.post(f"{self.url}/sim/faults", json=fault, timeout=10)
        if reply.status_code != 200:
            raise AssertionError(f"fault {fault} refused: {reply.text}")
        result: dict[str, Any] = reply.json()
        return result

    def symbols(self) -> list[str]:
        reply = httpx.get(
            f"{self.url}/v5/market/tickers", params={"category": "linear"}, timeout=10
        )
        return [row["symbol"] for row in reply.json()["result"]["list"]]


def start_bot(
    url: str, journal: Path, port: int, env: dict[str, str], *, reset_halt: bool = False
) -> Proc:
    ws = url.replace("http://", "ws://")
    args = [
        "run",
        "--rest-url",
        url,
        "--ws-public-url",
        f"{ws}/v5/public/linear",
        "--ws-private-url",
        f"{ws}/v5/private",
        "--api-key",
        KEY,
        "--api-secret",
        SECRET,
        "--journal",
        str(journal),
        "--duration",
        "86400",
        "--no-panel",
    ]
    if reset_halt:
        args.append("--reset-halt")
    return Proc(args, env={**BOT_ENV, "SCALPER_HTTP__PORT": str(port), **env})


@attrs.define
class Lifetime:
    """One bot process: its samples of (monotonic time, RSS kB)."""

    proc: Proc
    started: float
    rss: list[tuple[float, int]] = attrs.field(factory=list)
    planned_exit: str | None = None


@attrs.define
class Report:
    seconds: float
    seed: int
    faults: Counter[str] = attrs.field(factory=Counter)
    recover: dict[str, list[float]] = attrs.field(factory=lambda: defaultdict(list))
    unrecovered: Counter[str] = attrs.field(factory=Counter)
    checks: Counter[str] = attrs.field(factory=Counter)
    violations: list[str] = attrs.field(factory=list)
    orders: int = 0
    fills: int = 0
    stop_closes: int = 0
    restarts: int = 0
    halts: int = 0
    journal_failures: int = 0
    switches: int = 0
    rss_second_fifth_kb: float | None = None
    rss_last_fifth_kb: float | None = None
    rss_lifetime_s: float = 0.0
    exit_code: int | None = None

    def violation(self, text: str) -> None:
        if text not in self.violations:
            self.violations.append(text)

    def table(self) -> str:
        rows = [f"chaos soak: {self.seconds:.0f} s, seed {self.seed}"]
        rows.append(f"{'fault':<20}{'injected':>9}{'recover p50':>13}{'max':>8}{'unrecov':>9}")
        for kind in (*SIM_KINDS, *PROCESS_KINDS):
            times = self.recover.get(kind, [])
            p50 = f"{statistics.median(times):.1f} s" if times else "-"
            mx = f"{max(times):.1f} s" if times else "-"
            rows.append(
                f"{kind:<20}{self.faults[kind]:>9}{p50:>13}{mx:>8}{self.unrecovered[kind]:>9}"
            )
        rows.append(
            f"orders {self.orders}  fills {self.fills}  exchange-stop closes {self.stop_closes}  "
            f"restarts {self.restarts}  halts {self.halts}  journal failures "
            f"{self.journal_failures}  symbol switches {self.switches}"
        )
        second = self.rss_second_fifth_kb
        last = self.rss_last_fifth_kb
        if second and last:
            rows.append(
                f"RSS of the last lifetime ({self.rss_lifetime_s:.0f} s): 2nd fifth "
                f"{second / 1024:.1f} MiB, last fifth {last / 1024:.1f} MiB "
                f"({(last - second) / second * 100:+.1f} %)"
            )
        checks = ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items()))
        rows.append(f"invariant checks {sum(self.checks.values())} ({checks})")
        rows.append(f"violations {len(self.violations)}")
        rows.extend(f"  - {v}" for v in self.violations)
        rows.append(f"final exit code {self.exit_code}")
        return "\n".join(rows)


class Soak:
    """One soak run; ``run()`` returns its report (violations listed, never raised)."""

    def __init__(self, seconds: float, seed: int, workdir: Path, *, kinds: tuple[str, ...]):
        self.seconds = seconds
        self.seed = seed
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.journal = workdir / "journal.sqlite3"
        self.kinds = kinds
        self.report = Report(seconds=seconds, seed=seed)
        self.port = free_port()
        self.ex = Exchange.start(seed)
        self.bot: Lifetime | None = None
        self.lifetimes: list[Lifetime] = []
        self.t0 = time.monotonic()
        # state of the continuous checks
        self.link_to_order: dict[str, str] = {}
        self.seen_orders: dict[str, dict[str, Any]] = {}
        self.mismatch_since: float | None = None
        self.unprotected_since: dict[str, float] = {}
        self.pending_recovery: list[tuple[str, float]] = []
        self.pnl_baseline: set[str] = set()
        self.halt_seen_at: float | None = None
        self.halt_checked = False
        self.last_status: dict[str, Any] | None = None
        self.last_state: dict[str, Any] | None = None
        self.output_checked: dict[int, int] = {}
        self.symbols = self.ex.symbols()
        self.lock_thread: threading.Thread | None = None

    # ---------------------------------------------------------------- process
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def launch(self, *, reset_halt: bool = False) -> None:
        if reset_halt:
            # the day's total restarts at zero: closes booked so far no longer count
            self.pnl_baseline = {oid for oid, _ in closed_pnl(self.ex.url)}
        proc = start_bot(self.ex.url, self.journal, self.port, {}, reset_halt=reset_halt)
        self.bot = Lifetime(proc, time.monotonic())
        self.lifetimes.append(self.bot)
        self.halt_seen_at = None
        self.halt_checked = False

    def kill9(self) -> None:
        assert self.bot is not None
        self.bot.planned_exit = "kill9"
        self.bot.proc.popen.send_signal(signal.SIGKILL)
        self.bot.proc.popen.wait(timeout=10)
        self.bot.proc.drain()

    def restart(self, *, reset_halt: bool = False) -> None:
        self.report.restarts += 1
        self.launch(reset_halt=reset_halt)

    # ------------------------------------------------------------------ polls
    def status(self) -> dict[str, Any] | None:
        if self.bot is None or self.bot.proc.popen.poll() is not None:
            return None
        try:
            reply = httpx.get(f"http://127.0.0.1:{self.port}/api/status", timeout=3)
        except httpx.HTTPError:
            return None
        if reply.status_code != 200:
            return None
        status: dict[str, Any] = reply.json()
        return status

    def healthy(self, status: dict[str, Any] | None) -> bool:
        return (
            status is not None
            and bool(status.get("book_valid"))
            and status.get("book_age_ms") is not None
            and status["book_age_ms"] < HEALTHY_BOOK_AGE_MS
            and self.mismatch_since is None
            and not self.unprotected_since
        )

    def check_output(self) -> None:
        for life in self.lifetimes:
            life.proc.drain()
            start = self.output_checked.get(id(life), 0)
            for line in life.proc.lines[start:]:
                if "Traceback" in line:
                    self.report.violation(f"traceback in the bot's output: {line}")
                if "channel full" in line and "market-data" not in line:
                    self.report.violation(f"control channel full: {line}")
            self.report.checks["output"] += 1
            self.output_checked[id(life)] = len(life.proc.lines)

    def poll(self) -> None:
        now = time.monotonic()
        state = self.ex.state()
        status = self.status()
        self.last_state = state
        if status is not None:
            self.last_status = status
        self.check_output()
        bot = self.bot
        if bot is not None:
            code = bot.proc.popen.poll()
            if code is None:
                if (kb := rss_kb(bot.proc.popen.pid)) is not None:
                    bot.rss.append((now, kb))
            elif bot.planned_exit is None:
                bot.proc.drain()
                tail = "\n".join(bot.proc.lines[-8:])
                self.report.violation(f"the bot exited by itself (code {code}):\n{tail}")
                bot.planned_exit = "unplanned"
        self.check_orders(state)
        self.check_stops(state, now)
        if status is not None:
            self.check_position(state, status, now)
            self.check_halt(status, now)
        else:
            self.mismatch_since = None
        if self.healthy(status):
            for kind, t in self.pending_recovery:
                self.report.recover[kind].append(now - t)
            self.pending_recovery.clear()

    def check_orders(self, state: dict[str, Any]) -> None:
        open_links = Counter(o["orderLinkId"] for o in state["open_orders"] if o["orderLinkId"])
        for link, n in open_links.items():
            if n > 1:
                self.report.violation(f"{n} live orders for one intent {link}")
        for o in state["order_history"]:
            oid, link = o["orderId"], o["orderLinkId"]
            self.seen_orders[oid] = o
            if not link:
                continue
            other = self.link_to_order.setdefault(link, oid)
            if other != oid:
                self.report.violation(f"orderLinkId {link} names two orders: {other}, {oid}")
        self.report.checks["one order per intent"] += 1

    def check_stops(self, state: dict[str, Any], now: float) -> None:
        held = set()
        for p in state["positions"]:
            if Decimal(p["size"]) == 0:
                continue
            symbol = p["symbol"]
            held.add(symbol)
            stop = p.get("stopLoss") or ""
            if stop and Decimal(stop) != 0:
                self.unprotected_since.pop(symbol, None)
                continue
            since = self.unprotected_since.setdefault(symbol, now)
            if now - since > STOP_WITHIN_S:
                self.report.violation(
                    f"{symbol} {p['side']} {p['size']} without an exchange stop "
                    f"for {now - since:.1f} s (at t={self.elapsed():.0f} s)"
                )
        for symbol in list(self.unprotected_since):
            if symbol not in held:
                del self.unprotected_since[symbol]
        self.report.checks["stop on every position"] += 1

    def check_position(self, state: dict[str, Any], status: dict[str, Any], now: float) -> None:
        exchange = {
            p["symbol"]: (p["side"], Decimal(p["size"]))
            for p in state["positions"]
            if Decimal(p["size"]) != 0
        }
        held = status.get("position")
        ours = {} if held is None else {status["symbol"]: (held["side"], Decimal(held["size"]))}
        if exchange == ours:
            self.mismatch_since = None
        else:
            since = self.mismatch_since = self.mismatch_since or now
            if now - since > POSITION_LAG_S:
                self.report.violation(
                    f"position mismatch for {now - since:.0f} s at t={self.elapsed():.0f} s: "
                    f"exchange {exchange}, bot {ours}"
                )
        self.report.checks["position equals exchange"] += 1

    def check_halt(self, status: dict[str, Any], now: float) -> None:
        if not status.get("halted"):
            return
        if self.halt_seen_at is None:
            self.halt_seen_at = now
            self.report.halts += 1
        if self.halt_checked or status.get("position") is not None:
            return
        rows = closed_pnl(self.ex.url)
        sim = sum((pnl for oid, pnl in rows if oid not in self.pnl_baseline), Decimal(0))
        bot = Decimal(status["day_net_pnl"])
        if abs(bot - sim) <= Decimal("0.01"):
            self.halt_checked = True
            self.report.checks["halt pnl equals exchange"] += 1
        elif now - self.halt_seen_at > HALT_PNL_WITHIN_S:
            self.halt_checked = True
            self.report.checks["halt pnl equals exchange"] += 1
            self.report.violation(
                f"halted with day net {bot}, exchange's closed PnL {sim} "
                f"({len(rows)} rows) at t={self.elapsed():.0f} s"
            )

    # ----------------------------------------------------------------- waits
    def wait(self, seconds: float) -> None:
        """Poll (and check) for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(POLL_S)

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Poll until ``predicate()`` holds; False after ``timeout`` (bounded)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.poll()
            if predicate():
                return True
            time.sleep(POLL_S)
        return False

    def our_position(self) -> dict[str, Any] | None:
        state = self.last_state or {}
        for p in state.get("positions", []):
            if Decimal(p["size"]) != 0:
                return p
        return None

    def current_symbol(self) -> str | None:
        return (self.last_status or {}).get("symbol")

    def up(self) -> bool:
        return self.status() is not None

    # ----------------------------------------------------------------- faults
    def sim_fault(self, kind: str) -> dict[str, Any] | None:
        rng = self.rng
        symbol = self.current_symbol() or self.symbols[0]
        if kind == "ws_disconnect":
            return {"kind": kind, **rng.choice([{}, {"stream": "public"}, {"stream": "private"}])}
        if kind == "ws_silence":
            return {"kind": kind, **rng.choice([{"count": 3}, {"seconds": 4}])}
        if kind == "malformed_ws":
            return {
                "kind": kind,
                "count": rng.randint(1, 5),
                "variant": rng.choice(["json", "types"]),
            }
        if kind == "out_of_order_ws":
            return {"kind": kind, "count": 1}
        if kind == "latency":
            path = rng.choice([None, "/v5/order/create", "/v5/position/list"])
            fault = {"kind": kind, "ms": rng.choice([200, 500, 1500]), "count": rng.randint(1, 10)}
            return fault | ({"path": path} if path else {})
        if kind == "http_status":
            return {"kind": kind, "status": rng.choice([500, 502, 503]), "count": rng.randint(1, 3)}
        if kind == "timeout":
            return {
                "kind": kind,
                "count": 1,
                "path": rng.choice(["/v5/order/create", "/v5/order/realtime"]),
            }
        if kind == "ret_code":
            code, msg = rng.choice(
                [(10006, "Too many visits!"), (10002, "invalid request, please check your server timestamp"),  # noqa: E501
                 (110007, "ab not enough for new order"), (10016, "Internal system error.")]
            )  # fmt: skip
            return {"kind": kind, "code": code, "msg": msg, "count": rng.randint(1, 2),
                    "path": rng.choice(["/v5/order/create", "/v5/position/list"])}  # fmt: skip
        if kind == "drop_private_push":
            return {"kind": kind, "count": rng.randint(1, 5)}
        if kind == "close_position":
            held = self.our_position()
            return {"kind": kind, "symbol": held["symbol"] if held else symbol}
        if kind == "price_jump":
            pct = rng.choice([-1.0, 1.0, -1.5, 1.5])
            return {"kind": kind, "symbol": symbol, "pct": pct, "wick": rng.random() < 0.5}
        return None

    def inject(self, kind: str) -> None:
        t: float | None = time.monotonic()
        if kind in SIM_KINDS:
            fault = self.sim_fault(kind)
            assert fault is not None
            self.ex.inject(fault)
        elif kind == "kill9":
            self.kill9()
            self.wait(self.rng.uniform(0.5, 3))
            self.restart()
        elif kind == "stop_trigger":
            t = self.stop_trigger()
        elif kind == "journal_lock":
            self.journal_lock()
        elif kind == "symbol_switch":
            t = self.symbol_switch()
        if t is None:
            return  # the bot never held a position to do it to: not injected
        self.report.faults[kind] += 1
        self.pending_recovery.append((kind, t))

    def wait_holding(self, timeout: float) -> dict[str, Any] | None:
        """Wait until the bot holds a protected position (bounded); the position row."""
        ok = self.wait_for(
            lambda: (
                (p := self.our_position()) is not None
                and bool(p.get("stopLoss"))
                and self.last_status is not None
                and self.last_status.get("position") is not None
            ),
            timeout,
        )
        return self.our_position() if ok else None

    def stop_trigger(self) -> float | None:
        """The time of the kill, None when the bot held nothing to do it to."""
        held = self.wait_holding(60)
        if held is None or self.bot is None:
            return None
        t = time.monotonic()
        self.kill9()
        pct = -40.0 if held["side"] == "Buy" else 40.0
        self.ex.inject({"kind": "price_jump", "symbol": held["symbol"], "pct": pct})
        fired = self.wait_for(lambda: self.our_position() is None, 20)
        if not fired:
            self.report.violation(f"the exchange stop of {held} did not fire on a {pct} % jump")
        self.report.stop_closes += 1
        self.restart()
        # the restarted bot books the loss the exchange stop made; when the day's rows
        # (since the last --reset-halt) reach the limit it must halt, with its PnL equal
        day = sum(
            (pnl for oid, pnl in closed_pnl(self.ex.url) if oid not in self.pnl_baseline),
            Decimal(0),
        )
        if day > -Decimal(BOT_ENV["SCALPER_RISK__MAX_DAILY_LOSS_USD"]):
            return t  # the loss did not reach the limit: no halt is due
        halted = self.wait_for(
            lambda: (
                self.last_status is not None
                and bool(self.last_status.get("halted"))
                and self.halt_checked
            ),
            60,
        )
        if not halted:
            self.report.violation(
                f"no halt with its PnL checked after a {pct} % jump through the stop "
                f"(day's rows {day}; status {self.last_status and self.last_status.get('state')})"
            )
        self.reset_halt()
        return t

    def reset_halt(self) -> None:
        """Lift the latch as an operator would (stop, restart with ``--reset-halt``)."""
        assert self.bot is not None
        self.bot.planned_exit = "reset-halt"
        self.bot.proc.popen.send_signal(signal.SIGINT)
        try:
            self.bot.proc.popen.wait(timeout=30)
        except Exception:
            self.report.violation("the halted bot did not stop within 30 s of SIGINT")
            self.kill9()
        self.restart(reset_halt=True)

    def journal_lock(self) -> None:
        """Hold SQLite's exclusive lock on the journal for 12 s (another process would)."""
        locked = threading.Event()

        def hold() -> None:
            conn = sqlite3.connect(self.journal, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                locked.set()
                time.sleep(12)
                conn.execute("ROLLBACK")
            finally:
                conn.close()

        assert self.bot is not None
        life = self.bot
        life.planned_exit = "journal"  # it may stop: a journal that refuses writes must stop it
        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        locked.wait(30)
        thread_end = time.monotonic() + 40
        while thread.is_alive() and time.monotonic() < thread_end:
            self.poll()
            time.sleep(POLL_S)
        thread.join(5)
        # the bot's writes were refused: it stops (exit 1, its orders cancelled) — or, if
        # no write fell in the window, it kept going. Either way it must not hang.
        stopped = self.wait_for(lambda: life.proc.popen.poll() is not None, 30)
        if stopped:
            code = life.proc.popen.returncode
            life.proc.drain()
            if code != 1 or not any("journal" in line for line in life.proc.lines[-30:]):
                self.report.violation(f"journal failure: exit {code}, {life.proc.lines[-5:]}")
            self.report.journal_failures += 1
            self.restart()
        else:
            life.planned_exit = None

    def symbol_switch(self) -> float | None:
        """While holding, make another symbol the scanner's best by far (the tradable one
        needing the least jumps, 40-95 % at a time); the bot must close, then follow it.
        The time of the jump, None when the bot held nothing."""
        held = self.wait_holding(60)
        if held is None:
            return None
        # earlier jumps stay in the 24 h change: jump the tradable symbol that needs the
        # least until it beats the best score (turnover x |24 h change|) by 1.5x (the
        # scanner's switch ratio is 1.2x); jumps compound, so a few 95 % ones always do
        t = time.monotonic()
        target, pct = "", 0.0
        for _ in range(4):
            rows = httpx.get(
                f"{self.ex.url}/v5/market/tickers", params={"category": "linear"}, timeout=10
            ).json()["result"]["list"]
            score = {
                r["symbol"]: float(r["turnover24h"]) * abs(float(r["price24hPcnt"])) for r in rows
            }
            others = [
                r for r in rows
                if r["symbol"] != held["symbol"] and not r["symbol"].startswith(("BTC", "ETH"))
            ]  # fmt: skip
            if target:
                rival = max(v for k, v in score.items() if k != target)
                if score[target] >= 1.5 * rival:
                    break
                row = next(r for r in others if r["symbol"] == target)
            else:
                rival = max(score.values())
                row = min(others, key=lambda r: _jump_needed(r, rival))
            target = row["symbol"]
            pct = round(min(95.0, max(40.0, _jump_needed(row, rival))), 1)
            self.ex.inject({"kind": "price_jump", "symbol": target, "pct": pct})
            time.sleep(0.3)
        switched = self.wait_for(lambda: self.current_symbol() not in (held["symbol"], None), 60)
        if not switched:
            self.report.violation(
                f"no switch after jumps of {target} (last {pct} %) while holding {held['symbol']}"
            )
        else:
            self.report.switches += 1
        return t

    # ------------------------------------------------------------------- run
    def schedule(self) -> list[str]:
        """One round of every kind in a seeded order: the simulator's kinds shuffled,
        a process-level one (shuffled too) before every third of them."""
        sim = [k for k in self.kinds if k in SIM_KINDS]
        process = [k for k in self.kinds if k in PROCESS_KINDS]
        self.rng.shuffle(sim)
        self.rng.shuffle(process)
        out: list[str] = []
        for i, kind in enumerate(sim):
            if i % 3 == 0 and process:
                out.append(process.pop())
            out.append(kind)
        return out + process

    def run(self) -> Report:
        try:
            self.launch()
            if not self.wait_for(lambda: self.healthy(self.status()), 60):
                self.report.violation("the bot never became healthy at start")
            process_cutoff = self.seconds * 0.6
            queue = self.schedule()
            sim_only = [k for k in self.kinds if k in SIM_KINDS]
            while self.elapsed() < self.seconds - 10:
                if not queue:
                    queue = self.schedule()
                kind = queue.pop(0)
                status = self.last_status or {}
                if status.get("halted") and self.halt_checked and self.elapsed() < process_cutoff:
                    self.reset_halt()  # a halt of its own trading: checked, lifted
                if kind in PROCESS_KINDS and self.elapsed() > process_cutoff:
                    if not sim_only:
                        self.wait(1)
                        continue
                    kind = self.rng.choice(sim_only)
                self.inject(kind)
                self.wait(self.rng.uniform(2.0, 6.0))
            self.ex.inject({"kind": "clear"})
            self.wait(5)
            self.finish()
        finally:
            for i, life in enumerate(self.lifetimes):
                life.proc.stop()
                life.proc.drain()
                (self.workdir / f"bot-{i}.log").write_text("\n".join(life.proc.lines) + "\n")
            self.ex.stop()
        return self.report

    def finish(self) -> None:
        for kind, _ in self.pending_recovery:
            self.report.unrecovered[kind] += 1
        self.pending_recovery.clear()
        assert self.bot is not None
        life = self.bot
        life.planned_exit = "end"
        life.proc.popen.send_signal(signal.SIGINT)
        try:
            self.report.exit_code = life.proc.popen.wait(timeout=60)
        except Exception:
            self.report.violation("the bot did not stop within 60 s of SIGINT")
        self.check_output()
        if self.report.exit_code != 0:
            self.report.violation(f"exit code {self.report.exit_code}: {life.proc.lines[-5:]}")
        if not any("shutdown complete" in line for line in life.proc.lines):
            self.report.violation("no 'shutdown complete' line")
        state = self.ex.state()
        self.check_orders(state)
        if state["open_orders"]:
            self.report.violation(f"open at exit: {state['open_orders']}")
        if any(Decimal(p["size"]) != 0 for p in state["positions"]):
            self.report.violation(f"position at exit: {state['positions']}")
        self.report.checks["nothing open at exit"] += 1
        orders = self.seen_orders.values()
        self.report.orders = sum(1 for o in orders if o["orderLinkId"])
        self.report.fills = sum(1 for o in orders if Decimal(o.get("cumExecQty") or 0) > 0)
        self.rss(life)

    def rss(self, life: Lifetime) -> None:
        samples = life.rss
        if len(samples) < 10:
            return
        n = len(samples)
        second = [kb for _, kb in samples[n // 5 : 2 * n // 5]]
        last = [kb for _, kb in samples[4 * n // 5 :]]
        a, b = statistics.mean(second), statistics.mean(last)
        self.report.rss_second_fifth_kb, self.report.rss_last_fifth_kb = a, b
        self.report.rss_lifetime_s = samples[-1][0] - samples[0][0]
        self.report.checks["rss"] += 1
        if abs(b - a) > 0.10 * a:
            self.report.violation(f"RSS last fifth {b:.0f} kB vs second fifth {a:.0f} kB")


def run_soak(
    seconds: float, seed: int, kinds: tuple[str, ...] = SIM_KINDS + PROCESS_KINDS
) -> Report:
    """One soak in a fresh directory; with ``SOAK_KEEP=DIR`` the journal and every bot
    lifetime's output (``bot-N.log``) are kept there."""
    keep = os.environ.get("SOAK_KEEP")
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        return Soak(seconds, seed, path, kinds=kinds).run()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        return Soak(seconds, seed, Path(tmp), kinds=kinds).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 1)))
    args = parser.parse_args()
    report = run_soak(args.seconds, args.seed)
    sys.stdout.write(report.table() + "\n")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
