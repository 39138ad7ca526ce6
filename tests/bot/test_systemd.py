"""Under systemd: the unit file verifies, and ``scalper run`` speaks sd_notify.

The whole-bot test is black-box: ``scalper run`` as a subprocess against its built-in
simulated exchange, with a fake ``NOTIFY_SOCKET`` (a datagram socket of the test's
own), ``WATCHDOG_USEC`` and ``JOURNAL_STREAM`` naming its stderr file, as systemd
would set them. Real time (a subprocess), every wait bounded; no timing is asserted,
only what arrives and in which order.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_process import FAST_ENV

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "scalper.service"


def _unit_keys() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def test_unit_file_asks_for_notify_watchdog_restart_and_hardening() -> None:
    keys = _unit_keys()
    assert keys["Type"] == ["notify"]
    assert int(keys["WatchdogSec"][0]) > 0
    assert keys["Restart"] == ["on-failure"]
    assert keys["EnvironmentFile"] == ["/etc/scalper/scalper.env"]
    assert keys["NoNewPrivileges"] == ["yes"]
    assert keys["ProtectSystem"] == ["strict"]
    # the data directory the bot writes its journal to is the one left writable
    data_dir = next(v.split("=", 1)[1] for v in keys["Environment"] if "SCALPER_DATA__DIR" in v)
    assert data_dir in keys["ReadWritePaths"][0].split()
    assert data_dir == "/var/lib/" + keys["StateDirectory"][0]
    assert "--config" in keys["ExecStart"][0]
    assert "--api-secret" not in keys["ExecStart"][0]  # never a key in argv


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # ExecStart must name an executable that exists: point it at this checkout's
    scalper = Path(sys.executable).with_name("scalper")
    if not scalper.exists():
        pytest.skip("the scalper console script is not installed next to python")
    unit = tmp_path / "scalper.service"
    unit.write_text(UNIT.read_text().replace("/opt/scalper/.venv/bin/scalper", str(scalper)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # a container without a running systemd cannot resolve the unit's user
        if line.strip() and "scalper.service" in line
    ]
    assert done.returncode == 0, done.stderr
    assert problems == []


def test_whole_bot_under_a_fake_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log:
        stat = os.fstat(log.fileno())
        env = {
            **os.environ,
            **FAST_ENV,
            "PYTHONUNBUFFERED": "1",
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "1000000",  # ping every 0.5 s
            "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}",
        }
        env.pop("BYBIT_API_KEY", None)
        env.pop("BYBIT_API_SECRET", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scalper.cli",
                "run",
                "--duration",
                "6",
                "--journal",
                str(tmp_path / "journal.sqlite3"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        messages: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    messages.append(sock.recv(4096).decode())
                except TimeoutError:
                    continue
            code = proc.wait(timeout=30)
            sock.settimeout(0.01)
            while True:  # what was sent just before the exit
                try:
                    messages.append(sock.recv(4096).decode())
                except TimeoutError:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()
    lines = log_path.read_text().splitlines()
    assert code == 0, lines[-20:]
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m.split("\n"))
    stopping = next(i for i, m in enumerate(messages) if "STOPPING=1" in m.split("\n"))
    pings = [i for i, m in enumerate(messages) if m == "WATCHDOG=1"]
    assert ready < stopping
    # pings while trading, i.e. between READY and STOPPING: 6 s at one per 0.5 s, with
    # a wide margin for a loaded machine (the count, not the timing, is asserted)
    assert len([i for i in pings if ready < i < stopping]) >= 4
    assert any(m.startswith("STATUS=") for m in messages)
    assert messages[ready].startswith("READY=1\nSTATUS=")  # with the engine's state
    # journald is the log: no timestamp of our own, a syslog priority prefix instead
    assert lines
    assert all(
        re.match(r"<[2-7]>(TRACE|DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL)", ln)
        for ln in lines
        if not ln.startswith((" ", "Traceback"))
    )
    assert not any(re.search(r"\d\d:\d\d:\d\d", ln[:30]) for ln in lines)
    assert any(ln.startswith("<4>WARNING") and "shutting down" in ln for ln in lines)
