"""``scalper bench [--json] [--quick]``: our hot path beside its peers, in one run.

Absolute timings on a shared 2-core machine mean little; figures taken back to back in
one run, on the same frames, mean a lot. So every row prints ours beside a baseline and
the ratio (``x`` > 1: ours is better by that factor):

* **pipeline**: synthetic Bybit frames -> decode -> book -> engine decision, in
  process, no network. Ours: ``bybit.decode`` (msgspec structs), the integer-tick
  ``OrderBook``. Baseline: ``json`` + a Decimal book sorted in full per update, the
  same engine (what a straightforward port does). msgs/s, p50/p99 per message.
* **loopback**: a frame server in another process (``scalper.bench.server``) pushes
  ``orderbook.50`` deltas and ``publicTrade`` frames as fast as the socket takes them,
  over 127.0.0.1, to (a) the real market-data path: ``app.market_data`` (WebSocket
  reader -> decode -> book -> ``MarketFeed``) and ``app.strategy.StrategyRunner``
  (the engine); (b) pybit's ``WebSocket`` client, with its own book handling and a
  callback that only counts; (c) a bare trio-websocket loop that only receives, opened
  by our ``ws.default_connect`` (64 KiB reads, a 256-message queue): the ceiling of the
  transport the bot used before ``bybit.wsfast``; and (d) ``bybit.wsfast`` receiving
  alone, the ceiling of the transport it uses now. msgs/s = frames received, applied
  and reflected in an engine decision, from the subscribe to the decision that
  includes the last frame.
* **latency**: the same three-process set-up at a fixed 2,000 and 200 msgs/s; each
  frame carries its send time (CLOCK_MONOTONIC, shared by the processes), so
  tick-to-decision runs from the server's send to the engine's return; baseline: pybit's
  callback. p50/p99/p99.9 and the process CPU share (process CPU time / wall time).
* **order path**: against the simulator (in this process, loopback): place a Market
  IOC -> fill noticed, by the private stream's execution push (ours) vs REST polling
  of ``order/realtime`` at the bot's 500 ms interval (baseline), p50/p99.
* **memory**: RSS after 1 M messages through the pipeline vs after 100 k (flat = x1.00).

The modules: ``frames`` (the synthetic stream and the engine set-up), ``pipeline`` (the
in-process rows and memory), ``server`` (the frame server process), ``loopback`` (the
clients of the network rows), ``orderpath``, ``run`` (one whole run as JSON) and
``report`` (the text and the command).

``--quick`` runs every row on small counts (the test suite uses it): same rows, same
JSON keys, figures not meaningful.
"""

from __future__ import annotations

from .frames import make_frames
from .pipeline import naive, ours
from .report import main_bench, render
from .run import BenchPlan, run_bench

__all__ = ["BenchPlan", "main_bench", "make_frames", "naive", "ours", "render", "run_bench"]
