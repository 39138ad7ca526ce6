"""How many public messages per second the simulator pushes to one client in another process.

A measurement, not an assertion about speed (timings never gate the suite): it prints
msgs/s and only checks that messages flowed. Run with ``make soak`` or
``pytest -m slow tests/exchange/test_sim_throughput.py -s``.
"""

from __future__ import annotations

import signal
import sys

import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from scalper.sim.specs import DEFAULT_SPECS

from .test_sim_cli import _start

pytestmark = pytest.mark.slow

RATE = "20000"
SECONDS = 4.0


async def test_public_stream_throughput_to_one_client() -> None:
    proc, url = await _start("--rate", RATE, "--seed", "1")
    try:
        ws_url = url.replace("http://", "ws://") + "/v5/public/linear"
        topics = [f"orderbook.50.{s.symbol}" for s in DEFAULT_SPECS]
        topics += [f"publicTrade.{s.symbol}" for s in DEFAULT_SPECS]
        async with open_websocket_url(ws_url, max_message_size=2**24) as ws:
            await ws.send_message(orjson.dumps({"op": "subscribe", "args": topics}).decode())
            await ws.get_message()
            count = 0
            start = trio.current_time()
            with trio.move_on_after(SECONDS):
                while True:
                    await ws.get_message()
                    count += 1
            elapsed = trio.current_time() - start
    finally:
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            await proc.wait()
    rate = count / elapsed
    sys.stdout.write(f"\npublic stream: {count} msgs in {elapsed:.1f} s = {rate:,.0f} msgs/s\n")
    assert count > 0
