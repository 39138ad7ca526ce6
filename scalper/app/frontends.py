"""Wiring of the control core into the bot: the few calls ``bot.py`` makes.

The bot builds one ``Frontends`` after its engine and runner exist, and calls, in
order: ``restore`` (a pause left by the last run), ``start`` (the watcher, the HTTP
server when ``http.port`` is set, Telegram when ``telegram.token`` is set, all in the
trading nursery), ``announce_start`` once trading runs, and ``announce_stop`` after
the graceful stop, which also gives Telegram a bounded moment to deliver it.
"""

from __future__ import annotations

from functools import partial

import httpx
import trio
from loguru import logger

from ..config import Settings
from .prom import HttpProbe, build_registry
from .remote import Control, restore_paused
from .telegram import Telegram
from .watcher import run_watch
from .web import serve_http

__all__ = ["STOP_FLUSH_S", "Frontends"]

#: at shutdown, the stop notice gets this long to reach Telegram
STOP_FLUSH_S = 5.0


class Frontends:
    """The watcher, the HTTP server and Telegram of one bot."""

    def __init__(
        self,
        settings: Settings,
        control: Control,
        probe: HttpProbe | None = None,
        *,
        telegram_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.control = control
        self.probe = probe
        self.telegram: Telegram | None = None
        if settings.telegram.token is not None:
            self.telegram = Telegram(settings.telegram, control, transport=telegram_transport)
        #: the port the HTTP server listens on (None: off)
        self.http_port: int | None = None

    async def restore(self) -> bool:
        """Re-apply the last run's pause (journal ``control_state``); True when paused."""
        return await restore_paused(self.control.runner, self.settings.journal.path)

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the watcher, then the HTTP server and Telegram when configured."""
        await nursery.start(self._capture_alerts)
        await nursery.start(run_watch, self.control)
        http = self.settings.http
        if http.port:
            registry = build_registry(self.control, self.probe)
            self.http_port = await nursery.start(
                partial(
                    serve_http,
                    self.control,
                    registry,
                    host=http.host,
                    port=http.port,
                    token=http.token,
                )
            )
        if self.telegram is not None:
            await nursery.start(self.telegram.run)

    def announce_start(self) -> None:
        """The start notice (trading runs)."""
        control = self.control
        paused = " (paused: restored from the last run)" if control.engine.paused else ""
        control.notifier.publish(
            "start", f"scalper started: mode {control.mode}, session {control.session_tag}{paused}"
        )

    async def announce_stop(self, reason: str, clean: bool) -> None:
        """The stop notice; waits (bounded) for Telegram to send what is queued."""
        outcome = "clean" if clean else "NOT clean: check the exchange for orders/positions"
        self.control.notifier.publish("stop", f"scalper stopped ({reason}): {outcome}")
        await self.flush()

    def announce_crash(self) -> None:
        """A task failed and the bot is going down."""
        self.control.notifier.publish("stop", "scalper stopped on an error (see its log)")

    async def flush(self) -> None:
        """Give Telegram up to ``STOP_FLUSH_S`` to deliver the queued notices."""
        if self.telegram is not None:
            with trio.move_on_after(STOP_FLUSH_S) as waited:
                await self.telegram.drain()
            if waited.cancelled_caught:
                logger.warning("telegram: notices not delivered within {} s", STOP_FLUSH_S)

    async def _capture_alerts(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """ALERT log lines become notices for as long as the trading nursery runs."""
        notifier = self.control.notifier
        notifier.capture_alerts()
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            notifier.release_alerts()
