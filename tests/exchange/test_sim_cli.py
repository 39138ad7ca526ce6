"""``scalper exchange`` as its own process: the URL line, a working port, a clean Ctrl+C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import trio


async def _start(*args: str) -> tuple[trio.Process, str]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "scalper.cli", "exchange", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    buffer = b""
    with trio.fail_after(20):
        while b"\n" not in buffer:
            chunk = await proc.stdout.receive_some()
            assert chunk, "scalper exchange exited before printing its URL"
            buffer += chunk
    match = re.search(r"http://127\.0\.0\.1:(\d+)", buffer.decode())
    assert match, buffer
    return proc, match.group(0)


async def test_exchange_process_prints_url_serves_and_stops_on_ctrl_c() -> None:
    proc, url = await _start("--seed", "9", "--symbols", "BTCUSDT", "SOLUSDT")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            reply = (await http.get("/v5/market/tickers", params={"category": "linear"})).json()
        assert [row["symbol"] for row in reply["result"]["list"]] == ["BTCUSDT", "SOLUSDT"]
    finally:
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            code = await proc.wait()
    assert code == 0


async def test_unknown_symbol_is_a_usage_error() -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "scalper.cli", "exchange", "--port", "0", "--symbols", "NOPEUSDT"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"NOPEUSDT" in result.stderr


async def test_hedge_mode_flag_serves_a_hedge_mode_account() -> None:
    from .sim_helpers import get

    proc, url = await _start("--seed", "9", "--symbols", "ETHUSDT", "--hedge-mode")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            query = {"category": "linear", "symbol": "ETHUSDT"}
            reply = (await get(http, "/v5/position/list", query)).json()
        assert [row["positionIdx"] for row in reply["result"]["list"]] == [1, 2]
    finally:
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            code = await proc.wait()
    assert code == 0
