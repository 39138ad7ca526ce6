"""Harness for whole-bot tests: the real nursery tree against the simulator on loopback.

Sockets need real time, so these tests cannot use MockClock; instead every interval is
short (set through settings, as an operator would) and every wait is bounded with
``trio.fail_after``. Log lines are captured through a loguru sink so tests can check
what an operator would read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from loguru import logger

from scalper.app.bot import BotHandle, BotOptions, run_bot
from scalper.app.shutdown import ShutdownRequest
from scalper.bybit.ws import WsPolicy
from scalper.config import Secret, Settings, load_settings
from scalper.core.strategy import Engine
from scalper.sim import Sim, SimConfig, open_sim

#: operator-style settings that make a whole scenario fit in seconds
FAST: dict[str, object] = {
    "scanner.interval_s": 2.0,
    "reconcile.interval_s": 1.0,
    "execution.poll_interval_ms": 100,
    "execution.confirm_timeout_s": 2.0,
    "strategy.cooldown_s": 1.0,
    "strategy.max_hold_s": 8.0,
    "strategy.stale_ms": 2000,
}

#: the pong deadline is generous: a pong waits behind every frame queued before it, and
#: on a loaded machine a bot a second behind the market would otherwise reconnect
FAST_WS = WsPolicy(
    ping_interval_s=1.0,
    pong_timeout_s=5.0,
    backoff_base_s=0.05,
    backoff_max_s=0.5,
    healthy_after_s=2.0,
)


def bot_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Defaults + FAST + ``overrides`` (keys with ``__`` for ``.``), journal in tmp_path."""
    values = dict(FAST)
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    values["journal.path"] = str(tmp_path / "journal.sqlite3")
    return load_settings(overrides=values, env={})


@attrs.define
class LogCapture:
    """Every log line (level, message) while the test runs."""

    lines: list[tuple[str, str]] = attrs.field(factory=list)
    #: log records that carried an exception (a traceback an operator would see)
    tracebacks: list[str] = attrs.field(factory=list)

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lv, m in self.lines if level is None or lv == level]

    def errors(self) -> list[str]:
        return [m for lv, m in self.lines if lv in ("ERROR", "CRITICAL")]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()

    def sink(message: Any) -> None:
        record = message.record
        capture.lines.append((record["level"].name, record["message"]))
        if record["exception"] is not None:
            capture.tracebacks.append(f"{record['message']}: {record['exception']!r}")

    handler = logger.add(sink, level="DEBUG")
    try:
        yield capture
    finally:
        logger.remove(handler)


@asynccontextmanager
async def sim_exchange(**config: Any) -> AsyncIterator[Sim]:
    """The simulator on an ephemeral loopback port."""
    async with open_sim(SimConfig(port=0, **config)) as sim:
        yield sim


@asynccontextmanager
async def running_bot(
    sim: Sim, settings: Settings, **option_overrides: Any
) -> AsyncIterator[tuple[BotHandle, ShutdownRequest]]:
    """Run the bot on ``sim`` for the block; leaving it stops the bot gracefully.

    ``option_overrides`` replace fields of the ``BotOptions`` (e.g. ``http_timeout_s``).
    """
    shutdown = ShutdownRequest()
    exchange = attrs.evolve(
        settings.exchange,
        rest_url=sim.rest_url,
        ws_public_url=sim.ws_public_url,
        ws_private_url=sim.ws_private_url,
        api_key=Secret("sim-key"),
        api_secret=Secret("sim-secret"),
    )
    settings = attrs.evolve(settings, exchange=exchange)
    options = BotOptions(ws_policy=FAST_WS, tick_interval_s=0.1)
    options = attrs.evolve(options, **option_overrides)
    async with trio.open_nursery() as nursery:
        handle: BotHandle = await nursery.start(run_bot, settings, options, shutdown)
        try:
            yield handle, shutdown
        finally:
            shutdown.request("test finished")


async def wait_engine(
    handle: BotHandle,
    predicate: Callable[[Engine], bool],
    timeout: float,  # noqa: ASYNC109 - a test helper: the bound is the point
) -> None:
    """Wait (bounded) until the engine satisfies ``predicate``."""
    with trio.fail_after(timeout):
        await handle.runner.wait_until(predicate)


async def wait_for(
    predicate: Callable[[], bool],
    timeout: float,  # noqa: ASYNC109 - a test helper: the bound is the point
    step: float = 0.05,
) -> None:
    """Wait (bounded) for a condition outside the engine (the simulator's state), which
    has no event to wait on: polling is the honest tool here."""
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(step)
