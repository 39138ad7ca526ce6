"""Issue 6's "judged by", black-box: ``scalper run`` against ``scalper exchange`` (two
processes), faults injected over ``POST /sim/faults`` while it trades, and a run that
ends by ``--duration``: exit 0, no open orders, unique orderLinkIds, no traceback and
no ERROR line, and a final position equal to the exchange's (flat: flatten_on_exit).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from .test_process import FAST_ENV, Proc, exchange, sim_state, start_bot

#: entries within seconds on the seeded market, positions held 2 s
QUICK_ENV = {
    **FAST_ENV,
    "SCALPER_STRATEGY__WINDOW": "30",
    "SCALPER_STRATEGY__MIN_TICKS": "10",
    "SCALPER_STRATEGY__MOMENTUM_THRESHOLD": "0.0003",
    "SCALPER_STRATEGY__MAX_HOLD_S": "2",
}
RUN_S = 25
ERROR_LINE = re.compile(r"^\S+ \S+ (ERROR|CRITICAL)\b")


def wait_new(bot: Proc, pattern: str, since: int, timeout: float) -> re.Match[str]:
    """The first line after the first ``since`` lines matching ``pattern`` (bounded)."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        bot.drain()
        for line in bot.lines[since:]:
            if m := regex.search(line):
                return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no new line matching {pattern!r}; last: {bot.lines[-15:]}")
        time.sleep(0.05)


def inject(url: str, fault: dict[str, Any]) -> None:
    reply = httpx.post(f"{url}/sim/faults", json=fault, timeout=5)
    assert reply.status_code == 200, reply.text


def _close_outside_until_noticed(url: str, bot: Proc, symbol: str, attempts: int = 3) -> None:
    """Close the bot's next position from outside; the bot must say so.

    The bot holds a position at most ``MAX_HOLD_S`` (2 s): when its own exit starts
    before the outside close lands (a loaded machine is slow to read a line and post),
    the two closes race and the bot rightly sees its own close complete. That attempt
    proves nothing either way, so the next position is tried (bounded).
    """
    for _ in range(attempts):
        mark = len(bot.lines)
        wait_new(bot, r"state OrderPending -> PositionOpen", mark, timeout=15)
        inject(url, {"kind": "close_position", "symbol": symbol})
        seen = wait_new(bot, r"closed outside the bot|-> ClosingPosition", mark, timeout=15)
        if "closed outside the bot" in seen.group(0):
            return
    raise AssertionError(f"the bot closed first {attempts} times: {bot.lines[-15:]}")


def test_scalper_run_survives_faults_and_ends_clean(tmp_path: Path) -> None:
    with exchange() as url:
        bot = start_bot(url, tmp_path / "j.sqlite3", duration_s=RUN_S, **QUICK_ENV)
        try:
            symbol = bot.wait_line(r"stream: following (\w+)", timeout=20).group(1)
            bot.wait_line(r"state OrderPending -> PositionOpen", timeout=15)
            inject(url, {"kind": "ws_disconnect"})
            bot.wait_line(r"public stream reconnected", timeout=15)
            bot.wait_line(r"private stream reconnected", timeout=15)
            inject(url, {"kind": "ret_code", "path": "/v5/order/create", "code": 10006})
            inject(url, {"kind": "http_status", "status": 503, "count": 3})
            inject(url, {"kind": "malformed_ws", "count": 2})
            inject(url, {"kind": "out_of_order_ws"})
            inject(url, {"kind": "drop_private_push", "count": 5})
            bot.wait_line(r"skipped a bad public message", timeout=15)
            bot.wait_line(r"book invalid .*resubscribing", timeout=15)
            mark = len(bot.lines)
            wait_new(bot, r"order placed:", mark, timeout=15)  # trading goes on
            inject(url, {"kind": "price_jump", "symbol": symbol, "pct": 1})
            _close_outside_until_noticed(url, bot, symbol)
            code = bot.popen.wait(timeout=RUN_S + 15)
            bot.drain()
        finally:
            bot.stop()
        state = sim_state(url)
    assert code == 0, bot.lines[-20:]
    assert any("shutdown complete" in line for line in bot.lines)
    assert not any("Traceback" in line for line in bot.lines)
    assert [line for line in bot.lines if ERROR_LINE.match(line)] == []
    assert state["open_orders"] == []
    ours = [
        o["orderLinkId"] for o in state["order_history"] if o["orderLinkId"].startswith("scalp-")
    ]
    assert ours and len(ours) == len(set(ours))
    assert all(Decimal(p["size"]) == 0 for p in state["positions"])
    assert any("not executed (retCode 10006" in line for line in bot.lines)
    assert any("HTTP 503" in line for line in bot.lines)
