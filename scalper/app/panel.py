"""The terminal panel: a header pinned at the top, the log scrolling below it.

Drawn with ``rich.live`` on the terminal's alternate screen, refreshed by the status
task (``auto_refresh=False``: rich starts no thread of its own) and after every log
line, which reaches the panel through ``StatusConsole.write`` (the log sink's stream).
Every row is cut at the terminal's width rather than wrapped, so the layout stays
stable at 80x24 whatever is logged. When the panel stops, the log lines it showed are
written to the normal screen, so the terminal's scrollback keeps the history. What the
header shows is ``app.status.PanelView``; this module only draws it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from .status import PanelView

__all__ = ["HEADER_ROWS", "MAX_LOG_LINES", "REDRAW_MIN_S", "StatusConsole", "render_header"]

#: rows of the header, the rule under it included
HEADER_ROWS = 7
#: log lines kept for the panel (and written to the scrollback when it stops)
MAX_LOG_LINES = 2000
#: a burst of log lines redraws the panel at most this often (a frame costs ~1.3 ms)
REDRAW_MIN_S = 0.1
#: how each mode is shown: colour says how much is at stake
MODE_STYLES = {
    "sim": "bold black on green",
    "demo": "bold black on cyan",
    "testnet": "bold black on yellow",
    "live": "bold white on red",
}


def _price(value: float | Decimal | None) -> str:
    return "-" if value is None else f"{float(value):.8g}"


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _signed_style(value: Decimal | None) -> str:
    if value is None or value == 0:
        return ""
    return "green" if value > 0 else "red"


def _row(*parts: tuple[str, str]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for chunk, style in parts:
        text.append(chunk, style=style)
    return text


def render_header(view: PanelView) -> list[Text]:
    """The header's rows (``HEADER_ROWS - 1`` of them; the rule is added by the screen)."""
    mode = view.mode.upper()
    if view.activity == "running":
        activity_style = "green"
    elif view.activity.startswith("HALTED"):
        activity_style = "bold red"
    else:
        activity_style = "yellow"
    spread = view.spread_bps
    age = "-" if view.book_age_ms is None else f"{view.book_age_ms} ms"
    age_style = "yellow" if view.book_age_ms is not None and view.book_age_ms > 1000 else ""
    on_exchange = {True: "yes", False: "NO", None: "?"}[view.stop_on_exchange]
    if view.position == "flat":
        on_exchange = "-"
    rate = view.win_rate
    alert = view.last_alert or "-"
    return [
        _row(
            (f" {mode} ", MODE_STYLES.get(view.mode, "bold reverse")),
            ("  ", ""),
            (view.state, "bold"),
            ("  ", ""),
            (view.activity, activity_style),
            ("  ", ""),
            (view.symbol or "no symbol", "bold cyan"),
        ),
        _row(
            ("bid ", "dim"),
            (_price(view.bid), ""),
            ("  ask ", "dim"),
            (_price(view.ask), ""),
            ("  spread ", "dim"),
            ("-" if spread is None else f"{spread:.1f} bp", ""),
            ("  book ", "dim"),
            (age, age_style),
            ("" if view.book_valid else "  (resyncing)", "yellow"),
        ),
        _row(
            ("pos ", "dim"),
            (view.position, "bold"),
            ("  entry ", "dim"),
            (_price(view.entry), ""),
            ("  stop ", "dim"),
            (_price(view.stop), ""),
            (" on exch ", "dim"),
            (on_exchange, "red" if view.stop_on_exchange is False else ""),
            ("  uPnL ", "dim"),
            (_money(view.upnl), _signed_style(view.upnl)),
        ),
        _row(
            ("day net ", "dim"),
            (_money(view.day_net), _signed_style(view.day_net)),
            ("  loss headroom ", "dim"),
            ("-" if view.headroom is None else f"{view.headroom:.2f}", ""),
            ("  trades ", "dim"),
            (str(view.trades), ""),
            ("  win ", "dim"),
            ("-" if rate is None else f"{rate:.0%}", ""),
        ),
        _row(
            ("msgs/s ", "dim"),
            (f"{view.msgs_per_s:.0f}", ""),
            ("  drops ", "dim"),
            (str(view.drops), "yellow" if view.drops else ""),
            ("  reconnects ", "dim"),
            (str(view.reconnects), "yellow" if view.reconnects else ""),
        ),
        _row(("alert ", "dim"), (alert, "bold yellow" if view.last_alert else "")),
    ]


class StatusConsole:
    """The terminal panel, and the text stream the log sink writes its lines to.

    Before ``start`` and after ``stop`` lines go straight to the terminal; while the
    panel runs they are kept (bounded) and shown under the header.
    """

    def __init__(self, out: TextIO | None = None, *, console: Console | None = None) -> None:
        self.console = console if console is not None else Console(file=out, highlight=False)
        self._lines: deque[Text] = deque(maxlen=MAX_LOG_LINES)
        self._logged_while_live = 0
        self._partial = ""
        self._view: PanelView | None = None
        self._live: Live | None = None
        self._drawn_at = 0.0
        #: log lines arrived since the last frame
        self.dirty = False

    def isatty(self) -> bool:
        """True: the sink colours its lines (the colours are parsed back into rich text)."""
        return True

    @property
    def lines(self) -> list[Text]:
        """The log lines kept for the panel (oldest first)."""
        return list(self._lines)

    def write(self, text: str) -> int:
        """Take log text (a line may come in several writes) and show complete lines."""
        if not text:
            return 0
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            rich_line = Text.from_ansi(line, no_wrap=True, overflow="ellipsis")
            self._lines.append(rich_line)
            if self._live is None:
                self.console.print(rich_line, soft_wrap=True)
            else:
                self._logged_while_live += 1
        if complete and self._live is not None:
            if time.monotonic() - self._drawn_at >= REDRAW_MIN_S:
                self._draw()
            else:
                self.dirty = True  # drawn by the status task's next turn
        return len(text)

    def _draw(self) -> None:
        if self._live is not None:
            self._drawn_at = time.monotonic()
            self.dirty = False
            self._live.refresh()

    def redraw_if_dirty(self) -> None:
        """Draw the log lines held back by ``REDRAW_MIN_S``."""
        if self.dirty:
            self._draw()

    def flush(self) -> None:
        """Nothing is buffered beyond an incomplete line."""

    def start(self) -> None:
        """Enter the panel (alternate screen, no refresh thread)."""
        if self._live is not None:
            return
        self._logged_while_live = 0
        self._live = Live(
            self,
            console=self.console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)

    def show(self, view: PanelView) -> None:
        """Redraw the header with ``view``."""
        self._view = view
        self._draw()

    def stop(self) -> None:
        """Leave the panel; the lines logged meanwhile go to the normal screen."""
        live, self._live = self._live, None
        if live is None:
            return
        live.stop()
        shown = min(self._logged_while_live, len(self._lines))
        for line in list(self._lines)[len(self._lines) - shown :]:
            self.console.print(line, soft_wrap=True)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or console.height
        yield Group(*self.screen(options.max_width, height))

    def screen(self, width: int, height: int) -> Iterator[Text]:
        """The whole panel as rows: header, rule, then the newest log lines that fit."""
        header: list[Text] = (
            render_header(self._view) if self._view is not None else [Text("starting ...")]
        )
        for row in header:
            row.truncate(width, overflow="ellipsis")
            yield row
        yield Text("─" * width, style="dim")
        room = max(0, height - len(header) - 1)
        lines = list(self._lines)[-room:] if room else []
        for line in lines:
            line = line.copy()
            line.truncate(width, overflow="ellipsis")
            yield line
        for _ in range(room - len(lines)):  # a full screen: nothing left from before
            yield Text("")
