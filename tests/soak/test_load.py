"""Load (issue 10.3): the simulator pushes thousands of public messages a second on the one
symbol the bot trades, for 60 s, while the bot trades.

Market data may be dropped (the bot counts it: ``market_dropped``); control traffic never
(no ``channel full`` line, every order the bot decided has its outcome journaled). It
prints the message rate the bot received, drops, CPU shares of both processes and the
place -> confirmed latency of the orders placed under load (journal ``order`` record to
its ``order_end`` record for Market IOC orders, whose end is the exchange's confirmation;
to the REST acknowledgement for every order). A measurement: only generous bounds are
asserted, and only here (slow, ``make soak``), never in ``make test``.

``python -m tests.soak.test_load`` runs it outside pytest and prints the same lines.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scalper.app.journal import read_records

from .driver import Exchange, cpu_ticks, free_port, start_bot

RATE = int(os.environ.get("LOAD_RATE", 20000))
SECONDS = float(os.environ.get("LOAD_SECONDS", 60))
SYMBOL = "SOLUSDT"
_PLACED = re.compile(r"^(\S+ \S+) INFO\s+order placed: .*order_link_id=(\S+)")


def _status(port: int) -> dict[str, Any] | None:
    try:
        reply = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=3)
    except httpx.HTTPError:
        return None
    return reply.json() if reply.status_code == 200 else None


def _received(status: dict[str, Any]) -> int:
    c = status["counters"]
    return int(c["book_updates"] + c["trade_messages"] + c["market_dropped"])


def run_load(workdir: Path) -> dict[str, Any]:
    ex = Exchange.start(11, "--symbols", SYMBOL, "--rate", str(RATE))
    port = free_port()
    journal = workdir / "journal.sqlite3"
    # thousands of trades a second: the momentum window spans ~2 s of tape, as the
    # soak's 30 trades do at the default rate, so the bot trades under the load
    env = {"SCALPER_STRATEGY__WINDOW": "3000", "SCALPER_STRATEGY__MIN_TICKS": "1000"}
    bot = start_bot(ex.url, journal, port, env)
    try:
        deadline = time.monotonic() + 60
        while (s := _status(port)) is None or not s.get("book_valid"):
            assert time.monotonic() < deadline, bot.lines[-10:]
            time.sleep(0.5)
        first, t_first = s, time.monotonic()
        cpu_bot0, cpu_ex0 = cpu_ticks(bot.popen.pid), cpu_ticks(ex.proc.popen.pid)
        start_ms = int(first["ts_ms"])
        rates: list[float] = []
        prev, t_prev = first, t_first
        while time.monotonic() - t_first < SECONDS:
            time.sleep(1)
            now_status = _status(port)
            if now_status is None:
                continue
            t = time.monotonic()
            rates.append((_received(now_status) - _received(prev)) / (t - t_prev))
            prev, t_prev = now_status, t
        last, t_last = prev, t_prev
        cpu_bot1, cpu_ex1 = cpu_ticks(bot.popen.pid), cpu_ticks(ex.proc.popen.pid)
        end_ms = int(last["ts_ms"])
        bot.popen.send_signal(signal.SIGINT)
        code = bot.popen.wait(timeout=60)
        bot.drain()
    finally:
        bot.stop()
        ex.stop()
    hz = os.sysconf("SC_CLK_TCK")
    span = t_last - t_first
    assert None not in (cpu_bot0, cpu_bot1, cpu_ex0, cpu_ex1)
    records = list(read_records(str(journal), ("order", "order_end")))
    placed = {r.order_link_id: r for r in records if r.kind == "order"}
    ended = {r.order_link_id: r for r in records if r.kind == "order_end"}
    in_load = [link for link, r in placed.items() if start_ms <= r.ts_ms <= end_ms]
    ioc = [
        (ended[link].ts_ms - placed[link].ts_ms) / 1000
        for link in in_load
        if link in ended and placed[link].data.get("type") == "Market"
    ]
    acks: list[float] = []
    for line in bot.lines:
        if (m := _PLACED.search(line)) and m.group(2) in placed:
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").astimezone()
            if placed[m.group(2)].ts_ms >= start_ms:
                acks.append(when.timestamp() - placed[m.group(2)].ts_ms / 1000)
    return {
        "rate_setting": RATE,
        "seconds": span,
        "received_per_s": (_received(last) - _received(first)) / span,
        "min_1s_rate": min(rates) if rates else 0.0,
        "dropped": last["counters"]["market_dropped"] - first["counters"]["market_dropped"],
        "parse_errors": last["counters"]["parse_errors"],
        "bot_cpu": (cpu_bot1 - cpu_bot0) / hz / span,  # type: ignore[operator]
        "exchange_cpu": (cpu_ex1 - cpu_ex0) / hz / span,  # type: ignore[operator]
        "orders_in_load": len(in_load),
        "unreported": sorted(set(placed) - set(ended)),
        "ioc_confirm_s": ioc,
        "ack_s": acks,
        "channel_full": [
            line for line in bot.lines if "channel full" in line and "market-data" not in line
        ],
        "tracebacks": [line for line in bot.lines if "Traceback" in line],
        "exit_code": code,
        "lines": bot.lines,
    }


def _q(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values or [0])[0]
    )


def format_load(r: dict[str, Any]) -> str:
    ioc, ack = r["ioc_confirm_s"], r["ack_s"]

    def lat(values: list[float]) -> str:
        if not values:
            return "none"
        return (
            f"n={len(values)} p50 {statistics.median(values) * 1000:.0f} ms, "
            f"p95 {_q(values, 95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
        )

    return "\n".join([
        f"load: sim --rate {r['rate_setting']} on {SYMBOL} for {r['seconds']:.0f} s",
        f"  received by the bot: {r['received_per_s']:,.0f} msgs/s (lowest 1-s: {r['min_1s_rate']:,.0f})",  # noqa: E501
        f"  market data dropped: {r['dropped']}  parse errors: {r['parse_errors']}",
        f"  CPU share: bot {r['bot_cpu'] * 100:.0f} %, exchange {r['exchange_cpu'] * 100:.0f} % (of one core)",  # noqa: E501
        f"  orders placed under load: {r['orders_in_load']}; outcome not journaled: {len(r['unreported'])}",  # noqa: E501
        f"  place -> confirmed (Market IOC, order to order_end): {lat(ioc)}",
        f"  place -> REST acknowledged (every order): {lat(ack)}",
        f"  control channel full lines: {len(r['channel_full'])}; tracebacks: {len(r['tracebacks'])}; "  # noqa: E501
        f"exit {r['exit_code']}",
    ])  # fmt: skip


@pytest.mark.slow
def test_load_thousands_of_msgs_per_s_while_trading(tmp_path: Path) -> None:
    result = run_load(tmp_path)
    sys.stdout.write("\n" + format_load(result) + "\n")
    assert result["exit_code"] == 0
    assert result["channel_full"] == [] and result["tracebacks"] == []
    assert result["unreported"] == []
    assert result["orders_in_load"] > 0
    # generous bounds only (a 2-core machine shared with other work): the 1 s target is
    # reported above, not asserted
    assert result["ack_s"] and statistics.median(result["ack_s"]) < 5
    assert result["received_per_s"] > 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.stdout.write(format_load(run_load(Path(tmp))) + "\n")
