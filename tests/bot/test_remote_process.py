"""Black-box: ``scalper run`` as a process with Telegram pointed at a fake Bot API on
loopback and the HTTP server on; driven by Telegram messages and ``scalper ctl``
subprocesses. At DEBUG log level (httpx logs every request's URL there) neither
secret may appear anywhere in the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from .test_process import FAST_ENV
from .test_remote import OWNER, STRANGER, TG_TOKEN, TOKEN, fake_bot_api, free_port, wait_sent


async def _ctl(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-m", "scalper.cli", "ctl", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def test_scalper_run_with_telegram_and_ctl_as_processes(tmp_path: Path) -> None:
    port = free_port()
    async with fake_bot_api(TG_TOKEN) as (fake, api_url):
        env = {
            **os.environ,
            **FAST_ENV,
            "PYTHONUNBUFFERED": "1",
            "SCALPER_JOURNAL__PATH": str(tmp_path / "journal.sqlite3"),
            "SCALPER_LOG__LEVEL": "DEBUG",
            "SCALPER_HTTP__PORT": str(port),
            "SCALPER_HTTP__TOKEN": TOKEN,
            "SCALPER_TELEGRAM__TOKEN": TG_TOKEN,
            "SCALPER_TELEGRAM__CHAT_IDS": str(OWNER),
            "SCALPER_TELEGRAM__API_URL": api_url,
            "SCALPER_TELEGRAM__POLL_TIMEOUT_S": "1",
        }
        env.pop("BYBIT_API_KEY", None)
        env.pop("BYBIT_API_SECRET", None)
        output = bytearray()
        async with trio.open_nursery() as nursery:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "scalper.cli", "run", "--duration", "120"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )

            async def pump() -> None:
                assert proc.stdout is not None
                async for chunk in proc.stdout:
                    output.extend(chunk)

            nursery.start_soon(pump)
            try:
                await wait_sent(fake, OWNER, r"^scalper started: mode sim", timeout=60)
                fake.say(STRANGER, "/status")
                fake.say(OWNER, "/status")
                await wait_sent(fake, OWNER, r"day pnl")
                url = f"http://127.0.0.1:{port}"
                done = await _ctl("status", "--url", url)
                assert done.returncode == 0 and b"day pnl" in done.stdout
                done = await _ctl("pause", "--url", url, "--token", "wrong")
                assert done.returncode == 1 and b"refused (401)" in done.stderr
                done = await _ctl("pause", "--url", url, "--token", TOKEN)
                assert done.returncode == 0 and done.stdout.startswith(b"paused")
                await wait_sent(fake, OWNER, r"^scalper started")  # still running
                fake.say(OWNER, "/stop")
                with trio.fail_after(60):
                    code = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            nursery.cancel_scope.cancel()
        await wait_sent(fake, OWNER, r"^scalper stopped \(stop by telegram:\d+\): clean")
    text = output.decode(errors="replace")
    assert code == 0, text[-3000:]
    assert fake.to(STRANGER) == ["This bot does not take commands from this chat."]
    assert "command stop from telegram:" in text and "command pause from http" in text
    assert "getUpdates" in text  # httpx's request lines are there (DEBUG) ...
    assert TG_TOKEN not in text and TOKEN not in text  # ... without either secret
