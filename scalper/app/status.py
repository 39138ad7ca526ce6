"""What the operator sees: a live status line in a terminal, summaries in a log.

In a terminal (a foreground run, or tmux on a VPS) the last line of the screen is a
status panel redrawn every second: state, symbol, position, PnL, counters. Log lines
scroll above it: ``StatusConsole`` is the stream the log sink writes to, and it clears
the panel before each log line and redraws it after, so the two never garble.

When output is not a terminal (systemd, a pipe, CI) there is no panel: a summary log
line every ``summary_interval_s`` carries the same facts, greppable.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TextIO

import trio
from loguru import logger

from .metrics import Metrics

__all__ = ["StatusConsole", "run_status"]

_CLEAR_LINE = "\r\x1b[2K"


class StatusConsole:
    """A text stream that keeps one status line pinned under the scrolling log."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._panel = ""
        #: the panel is on the cursor's line (the next write replaces it)
        self._panel_shown = False
        #: the last write ended inside a line: erasing the line would erase log text
        self._mid_line = False

    def isatty(self) -> bool:
        """Delegates, so the log sink colours its output as for a terminal."""
        return self._out.isatty()

    def write(self, text: str) -> int:
        """Write log text above the panel (a line may come in several writes)."""
        if not text:
            return 0
        if self._panel_shown:
            self._out.write(_CLEAR_LINE)
            self._panel_shown = False
        self._out.write(text)
        self._mid_line = not text.endswith("\n")
        if not self._mid_line and self._panel:
            self._out.write(self._panel)
            self._panel_shown = True
        self._out.flush()
        return len(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._out.flush()

    def show(self, panel: str) -> None:
        """Replace the status line (cut to the terminal's width: a wrapped line could not
        be cleared, and the panel would pile up instead of staying one line)."""
        width = shutil.get_terminal_size((120, 24)).columns - 1
        panel = panel if len(panel) <= width else panel[: max(0, width - 1)] + "…"
        self._panel = panel
        if self._mid_line:
            return  # drawn once the log line is complete
        self._out.write(_CLEAR_LINE + panel)
        self._panel_shown = True
        self._out.flush()

    def clear(self) -> None:
        """Remove the status line (at exit, so the shell prompt starts clean)."""
        self._panel = ""
        if self._panel_shown:
            self._out.write(_CLEAR_LINE)
            self._panel_shown = False
        self._out.flush()


async def run_status(
    metrics: Metrics,
    describe: Callable[[], str],
    console: StatusConsole | None,
    *,
    refresh_s: float = 1.0,
    summary_interval_s: float = 30.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Redraw the panel (terminal) or log a summary (no terminal) until cancelled.

    ``describe`` returns the trading part (state, symbol, position) as one line.
    """
    task_status.started()
    if console is None:
        while True:
            await trio.sleep(summary_interval_s)
            logger.info("status: {} | {}", describe(), metrics.summary())
    try:
        while True:
            console.show(f"[{describe()}] {metrics.compact()}")
            await trio.sleep(refresh_s)
    finally:
        console.clear()
