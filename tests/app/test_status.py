"""The status console keeps one panel line under the scrolling log, and the status task
redraws it (terminal) or logs summaries (no terminal). MockClock for the task.

``screen`` replays what was written the way a terminal would (carriage return, "erase
line", newline), so the tests assert what the operator sees, not escape sequences.
"""

from __future__ import annotations

import io
import re

import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.metrics import Metrics
from scalper.app.status import StatusConsole, run_status

_TOKENS = re.compile(r"\r|\x1b\[2K|\n|[^\r\n\x1b]+")


def screen(written: str) -> list[str]:
    """The lines a terminal shows after ``written`` (only the sequences we emit)."""
    lines = [""]
    col = 0
    for token in _TOKENS.findall(written):
        if token == "\r":
            col = 0
        elif token == "\x1b[2K":
            lines[-1] = ""
        elif token == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1].ljust(col)
            lines[-1] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return lines


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")


def test_log_lines_scroll_above_the_panel_which_is_redrawn_after_each() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("[Idle SOLUSDT flat] book=1")
    console.write("first log line\n")
    console.write("second log line\n")
    console.show("[PositionOpen SOLUSDT Buy 5 @ 100] book=2")
    assert screen(out.getvalue()) == [
        "first log line",
        "second log line",
        "[PositionOpen SOLUSDT Buy 5 @ 100] book=2",
    ]


def test_without_a_panel_log_lines_are_written_as_they_are() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.write("a\n")
    console.write("")
    console.write("b\n")
    assert screen(out.getvalue()) == ["a", "b", ""]
    assert console.isatty() is False


def test_a_line_written_in_pieces_is_not_erased() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("PANEL")
    console.write("part one, ")
    console.write("part two\n")
    assert screen(out.getvalue()) == ["part one, part two", "PANEL"]


def test_a_panel_redraw_in_the_middle_of_a_line_waits_for_its_end() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("OLD")
    console.write("half a line, ")
    console.write("")
    console.show("NEW")
    console.write("the other half\n")
    assert screen(out.getvalue()) == ["half a line, the other half", "NEW"]


def test_a_multi_line_record_keeps_every_line() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("PANEL")
    console.write("Traceback (most recent call last):\n  File x\nValueError: boom\n")
    assert screen(out.getvalue()) == [
        "Traceback (most recent call last):",
        "  File x",
        "ValueError: boom",
        "PANEL",
    ]


def test_a_panel_wider_than_the_terminal_is_cut_to_one_line() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("x" * 200)
    [line] = screen(out.getvalue())
    assert len(line) <= 79 and line.endswith("…")


def test_clear_leaves_an_empty_line_and_no_panel_after_later_logs() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("PANEL")
    console.clear()
    console.write("bye\n")
    assert screen(out.getvalue()) == ["bye", ""]


def test_loguru_sink_writes_through_the_console() -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    console.show("PANEL")
    handler = logger.add(console, format="{message}", level="INFO", colorize=False)
    try:
        logger.info("order placed")
        logger.info("order filled")
    finally:
        logger.remove(handler)
    assert screen(out.getvalue()) == ["order placed", "order filled", "PANEL"]


async def test_status_task_redraws_every_refresh_and_clears_at_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    console = StatusConsole(out)
    metrics = Metrics()
    calls = 0

    def describe() -> str:
        nonlocal calls
        calls += 1
        return f"Idle SOLUSDT flat #{calls}"

    with trio.move_on_after(2.5):
        await run_status(metrics, describe, console, refresh_s=1.0)
    assert calls == 3  # at 0, 1 and 2 s
    assert screen(out.getvalue()) == [""]  # cleared on the way out
    assert "#3]" in out.getvalue()


async def test_without_a_console_a_summary_is_logged_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        with trio.move_on_after(65):
            await run_status(Metrics(), lambda: "Idle - flat", None, summary_interval_s=30.0)
    finally:
        logger.remove(handler)
    summaries = [line for line in lines if line.startswith("status: Idle - flat | ")]
    assert len(summaries) == 2
