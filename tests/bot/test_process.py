"""The bot as a process: Ctrl+C shuts it down cleanly; kill -9 and restart recovers.

Black-box: ``scalper exchange`` and ``scalper run`` as subprocesses on loopback, driven
only through signals, their output and the exchange's ``/sim/state``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import trio

from scalper.bybit.rest import BybitRest, Credentials
from scalper.core.instrument import round_price
from scalper.core.model import OrderIntent, OrderType, Side, TimeInForce

FAST_ENV = {
    "SCALPER_SCANNER__INTERVAL_S": "2",
    "SCALPER_RECONCILE__INTERVAL_S": "1",
    "SCALPER_EXECUTION__POLL_INTERVAL_MS": "100",
    "SCALPER_EXECUTION__CONFIRM_TIMEOUT_S": "2",
    "SCALPER_STRATEGY__COOLDOWN_S": "1",
    "SCALPER_STRATEGY__STALE_MS": "2000",
}


class Proc:
    """A subprocess whose merged output is read line by line in a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        full_env.pop("BYBIT_API_KEY", None)
        full_env.pop("BYBIT_API_SECRET", None)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "scalper.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line (from now on, or already read) matching ``pattern``."""
        regex = re.compile(pattern)
        for line in self.lines:
            if m := regex.search(line):
                return m
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.lines.append(line)
            if m := regex.search(line):
                return m
        raise AssertionError(
            f"no line matching {pattern!r} in {timeout} s; last: {self.lines[-15:]}"
        )

    def drain(self) -> None:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


@contextmanager
def exchange(seed: int = 3) -> Iterator[str]:
    proc = Proc(["exchange", "--port", "0", "--seed", str(seed)])
    try:
        yield proc.wait_line(r"(http://127\.0\.0\.1:\d+)", timeout=20).group(1)
    finally:
        proc.popen.send_signal(signal.SIGINT)
        try:
            proc.popen.wait(timeout=10)
        finally:
            proc.stop()


def start_bot(url: str, journal: Path, *, duration_s: float = 300, **env: str) -> Proc:
    """``scalper run`` against the exchange at ``url``, with FAST_ENV plus ``env``."""
    ws = url.replace("http://", "ws://")
    return Proc(
        [
            "run",
            "--rest-url",
            url,
            "--ws-public-url",
            f"{ws}/v5/public/linear",
            "--ws-private-url",
            f"{ws}/v5/private",
            "--api-key",
            "sim-key",
            "--api-secret",
            "sim-secret",
            "--journal",
            str(journal),
            "--duration",
            f"{duration_s:g}",
        ],
        env={**FAST_ENV, **env},
    )


def sim_state(url: str) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{url}/sim/state", timeout=5).json()


def interrupt(bot: Proc, within: float = 10.0) -> int:
    start = time.monotonic()
    bot.popen.send_signal(signal.SIGINT)
    code = bot.popen.wait(timeout=within)
    bot.drain()
    assert time.monotonic() - start < within
    return code


def test_sigint_exits_zero_within_10_s_with_no_open_orders(tmp_path: Path) -> None:
    with exchange() as url:
        bot = start_bot(url, tmp_path / "j.sqlite3")
        try:
            bot.wait_line(r"state OrderPending -> PositionOpen", timeout=60)
            assert interrupt(bot) == 0
        finally:
            bot.stop()
        state = sim_state(url)
        assert state["open_orders"] == []
        assert all(Decimal(p["size"]) == 0 for p in state["positions"])  # flatten_on_exit
        assert not any("Traceback" in line for line in bot.lines)
        assert any("shutdown complete" in line for line in bot.lines)


async def _place_stray(url: str, symbol: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        rest = BybitRest(http, Credentials(api_key="sim-key", api_secret="sim-secret"))
        await rest.sync_clock()
        instrument = next(i for i in await rest.instruments() if i.symbol == symbol)
        last = (await rest.tickers(symbol))[0].last_price
        assert last is not None
        price = round_price(instrument, Decimal(str(last)) * Decimal("0.7"), Side.BUY)
        await rest.place_order(
            OrderIntent(
                symbol=symbol,
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                qty=instrument.min_qty * 10,
                price=price,
                time_in_force=TimeInForce.GTC,
                order_link_id="scalp-crashed-e99",
            )
        )


def test_kill_9_then_restart_adopts_the_position_and_cancels_stray_orders(tmp_path: Path) -> None:
    keep_open = {
        "SCALPER_STRATEGY__STOP_LOSS_PCT": "5",
        "SCALPER_STRATEGY__TAKE_PROFIT_PCT": "10",
        "SCALPER_STRATEGY__MAX_HOLD_S": "0",
    }
    with exchange() as url:
        first = start_bot(url, tmp_path / "j.sqlite3", **keep_open)
        try:
            first.wait_line(r"state OrderPending -> PositionOpen", timeout=60)
        finally:
            first.popen.send_signal(signal.SIGKILL)
            first.popen.wait(timeout=10)
        held = [p for p in sim_state(url)["positions"] if Decimal(p["size"]) > 0]
        assert len(held) == 1
        symbol = held[0]["symbol"]
        trio.run(_place_stray, url, symbol)
        assert any(o["orderLinkId"] == "scalp-crashed-e99" for o in sim_state(url)["open_orders"])

        second = start_bot(url, tmp_path / "j.sqlite3", **keep_open)
        try:
            second.wait_line(r"start-up: cancelled a stray order", timeout=30)
            second.wait_line(rf"state Idle -> PositionOpen: .*{held[0]['size']}|adopt", timeout=30)
            assert not any(
                o["orderLinkId"] == "scalp-crashed-e99" for o in sim_state(url)["open_orders"]
            )
            assert interrupt(second) == 0
        finally:
            second.stop()
        state = sim_state(url)
        assert state["open_orders"] == []
        assert all(Decimal(p["size"]) == 0 for p in state["positions"])
