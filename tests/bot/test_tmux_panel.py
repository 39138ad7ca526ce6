"""Smoke test in a real terminal: ``scalper run`` in an 80x24 tmux pane keeps its panel
header intact at the top while log lines scroll beneath it.

tmux comes from Debian (``.ci/run`` installs it when missing); without it the test is
skipped. The tmux server runs on a socket of the test's own and is killed at the end.
Real time (a subprocess); every wait is bounded, no timing is asserted.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .test_process import FAST_ENV

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

LABELS = ("bid ", "pos ", "day net ", "msgs/s ", "alert ")


def _tmux(socket_name: str, *args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket_name, *args], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _pane(socket_name: str) -> list[str]:
    return _tmux(socket_name, "capture-pane", "-p", "-t", "bot").split("\n")[:24]


def _header_intact(rows: list[str]) -> bool:
    return (
        len(rows) == 24
        and rows[0].startswith(" SIM ")
        and all(rows[1 + i].startswith(label) for i, label in enumerate(LABELS))
        and rows[6] == "─" * 80
    )


def _start(socket_name: str, tmp_path: Path, *flags: str) -> None:
    env = {
        **FAST_ENV,
        "SCALPER_LOG__LEVEL": "DEBUG",  # plenty of lines to scroll
        "TERM": "xterm-256color",
        "PYTHONUNBUFFERED": "1",
        "BYBIT_API_KEY": "",
        "BYBIT_API_SECRET": "",
    }
    command = " ".join(
        [
            "env",
            *(shlex.quote(f"{k}={v}") for k, v in env.items()),
            shlex.quote(sys.executable),
            "-m",
            "scalper.cli",
            "run",
            "--duration",
            "40",
            "--journal",
            shlex.quote(str(tmp_path / "journal.sqlite3")),
            *flags,
            ";",
            "sleep",
            "60",
        ]
    )
    _tmux(
        socket_name,
        "new-session",
        "-d",
        "-s",
        "bot",
        "-x",
        "80",
        "-y",
        "24",
        "-c",
        os.getcwd(),
        command,
    )


def test_panel_stays_pinned_while_the_log_scrolls(tmp_path: Path) -> None:
    socket_name = f"scalper-test-{uuid.uuid4().hex[:8]}"
    _start(socket_name, tmp_path)
    try:
        seen: list[list[str]] = []
        deadline = time.monotonic() + 60
        # wait until the log area is full (lines have scrolled), then watch it move on
        while time.monotonic() < deadline:
            rows = _pane(socket_name)
            if _header_intact(rows) and all(r.strip() for r in rows[7:24]):
                if not seen or rows[7:] != seen[-1][7:]:
                    seen.append(rows)
                if len(seen) >= 3:
                    break
            time.sleep(0.3)
        assert len(seen) >= 3, "\n".join(_pane(socket_name))
        for rows in seen:
            assert _header_intact(rows), "\n".join(rows)
            assert all(len(r) <= 80 for r in rows)
            # short terminal lines: HH:MM:SS LEVEL message
            for line in rows[7:]:
                assert line[:8].count(":") == 2 and line[2] == ":", line
        first, last = seen[0], seen[-1]
        assert first[7:] != last[7:]  # the log scrolled ...
        assert first[0].split()[:1] == last[0].split()[:1] == ["SIM"]  # ... the header stayed
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=20)


def test_no_panel_gives_plain_log_lines(tmp_path: Path) -> None:
    socket_name = f"scalper-test-{uuid.uuid4().hex[:8]}"
    _start(socket_name, tmp_path, "--no-panel")
    try:
        deadline = time.monotonic() + 60
        rows: list[str] = []
        while time.monotonic() < deadline:
            rows = _pane(socket_name)
            if any("symbol switch" in r for r in rows):
                break
            time.sleep(0.3)
        assert any("symbol switch" in r for r in rows), "\n".join(rows)
        assert not _header_intact(rows)
        assert not any(r.startswith((" SIM ", "─")) for r in rows)
        logged = [r for r in rows if r.strip()]
        # short terminal lines (HH:MM:SS LEVEL message); a DEBUG line longer than the
        # pane wraps onto the next row, so count the rows that start a record
        starts = [r for r in logged if re.match(r"\d\d:\d\d:\d\d (INFO|DEBUG|WARN|ERROR) ", r)]
        assert len(starts) >= 3, "\n".join(rows)
        # any other row continues a full one (capture-pane drops a trailing blank: >= 79)
        for i, row in enumerate(logged[1:], start=1):
            assert row in starts or len(logged[i - 1]) >= 79, "\n".join(rows)
        assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", r) for r in rows)
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=20)
