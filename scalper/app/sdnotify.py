"""systemd's notify protocol: tell the service manager we are ready, alive and stopping.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (an ``AF_UNIX`` datagram socket,
a path or, with a leading ``@``, a name in the abstract namespace) and, with
``WatchdogSec=``, ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The protocol is a few
``KEY=value`` lines per datagram (sd_notify(3)), so it is written out here rather than
pulled in as a dependency:

* ``READY=1`` once the bot trades (every task started, the account swept);
* ``WATCHDOG=1`` at half of ``WATCHDOG_USEC``, sent from the strategy loop's timer: if
  that loop hangs the pings stop and systemd restarts the bot (the halt latch survives
  the restart, and the exchange-side stops keep the position safe meanwhile);
* ``STATUS=...`` with the engine's state, shown by ``systemctl status``;
* ``STOPPING=1`` when the graceful shutdown begins.

Without ``NOTIFY_SOCKET`` every call is a no-op, so the bot runs the same anywhere.
A send that fails (systemd restarting, a socket gone) is logged once and never raised:
the protocol is advisory, trading must not stop because of it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

from loguru import logger

__all__ = ["Notifier", "socket_address"]


def socket_address(value: str) -> str | bytes:
    """The ``connect`` address for a ``NOTIFY_SOCKET`` value ('@name' is abstract)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends sd_notify datagrams when a socket is configured; otherwise does nothing.

    ``clock`` (seconds, monotonic) paces the watchdog: a ping is sent when at least
    half of ``WATCHDOG_USEC`` passed since the last one. Tests inject trio's clock
    (``trio.current_time`` under ``MockClock``).
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._address = socket_address(address) if address else None
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        #: seconds between watchdog pings (half the timeout), None when no watchdog
        self.watchdog_interval_s: float | None = (
            watchdog_usec / 2 / 1_000_000 if watchdog_usec and self._sock else None
        )
        self._clock = clock
        self._last_ping: float | None = None
        self._last_status: str | None = None
        self._failed = False
        self._stopping = False
        #: datagrams sent (for tests and the curious)
        self.sent = 0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, clock: Callable[[], float] | None = None
    ) -> Notifier:
        """Built from ``NOTIFY_SOCKET`` / ``WATCHDOG_USEC`` / ``WATCHDOG_PID``.

        A ``WATCHDOG_PID`` naming another process means the watchdog is not ours.
        """
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if raw.isdigit() and int(raw) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw)
        return cls(address, watchdog_usec=usec, clock=clock)

    @property
    def enabled(self) -> bool:
        """True when a notify socket is configured."""
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ...) as one datagram; False if not sent."""
        if self._sock is None or self._address is None or not fields:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                logger.warning("sd_notify: cannot send to NOTIFY_SOCKET: {}", exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str) -> None:
        """The bot trades: ``READY=1`` with a status line."""
        self._last_status = status
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """``STATUS=`` when it changed (systemd shows the latest)."""
        if status != self._last_status:
            self._last_status = status
            self.notify(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        """The shutdown began: ``STOPPING=1`` (once; later calls do nothing)."""
        if self._stopping:
            return
        self._stopping = True
        self._last_status = status
        self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        """Called on every turn of the strategy loop: ``WATCHDOG=1`` once per interval."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        now = self._clock() if self._clock is not None else time.monotonic()
        if self._last_ping is not None and now - self._last_ping < interval:
            return
        self._last_ping = now
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        """Close the socket (further calls are no-ops)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self.watchdog_interval_s = None
