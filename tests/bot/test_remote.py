"""Remote control against a running bot on the simulator: the HTTP API (auth and every
verb), ``scalper ctl``, the dashboard rendered by a real headless Chromium, and
Telegram through a fake Bot API server on loopback.

Real sockets, so real time: every wait is bounded (``trio.fail_after``) and waits for
a state, never for a duration.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scalper.app.bot import BotHandle
from scalper.app.journal import read_records
from scalper.app.remote import restore_paused
from scalper.core.model import EngineState
from scalper.ctl import main_ctl
from scalper.sim import Sim

from .conftest import LogCapture, bot_settings, running_bot, sim_exchange, wait_engine, wait_for

TOKEN = "http-secret-token-0123456789"
TG_TOKEN = "123456:telegram-secret-token-abcdef"
OWNER, STRANGER = 4242, 999
#: stops far away and no max hold: a position stays open until the test acts on it
HOLD = {
    "strategy__stop_loss_pct": 5.0,
    "strategy__take_profit_pct": 10.0,
    "strategy__max_hold_s": 0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exchange_flat(sim: Sim) -> bool:
    return all(Decimal(p["size"]) == 0 for p in sim.state()["positions"])


def http_port(bot: BotHandle) -> int:
    assert bot.frontends is not None and bot.frontends.http_port is not None
    return bot.frontends.http_port


async def test_http_api_auth_and_every_verb(tmp_path: Path, logs: LogCapture) -> None:
    settings = bot_settings(tmp_path, http__port=free_port(), http__token=TOKEN, **HOLD)
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, shutdown):
        base = f"http://127.0.0.1:{http_port(bot)}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_engine(bot, lambda e: e.symbol is not None, timeout=30)
            status = (await client.get("/api/status")).json()
            assert status["symbol"] == bot.engine.symbol and status["mode"] == "sim"
            assert status["state"] in {s.value for s in EngineState}
            assert status["paused"] is False and status["halted"] is False

            text = (await client.get("/metrics")).text
            assert "process_resident_memory_bytes" in text
            assert 'scalper_engine_state{state="Idle"}' in text
            assert "scalper_tick_to_decision_seconds_bucket" in text
            assert "scalper_order_round_trip_seconds_count" in text
            page = await client.get("/")
            assert page.status_code == 200 and 'id="state"' in page.text

            # auth: none, wrong scheme, wrong token -> 401, nothing changes
            for headers in ({}, {"Authorization": TOKEN}, {"Authorization": "Bearer nope"}):
                reply = await client.post("/api/pause", headers=headers)
                assert reply.status_code == 401, headers
            assert not bot.engine.paused
            assert (await client.post("/api/dance", headers=auth)).status_code == 404

            # an entry happens, then flatten closes it on the exchange and pauses
            await wait_engine(bot, lambda e: e.position is not None, timeout=60)
            reply = await client.post("/api/flatten", headers=auth)
            assert reply.status_code == 200 and reply.json()["ok"] is True
            assert bot.engine.paused and bot.engine.paused_by == "http"
            await wait_for(lambda: exchange_flat(sim) and bot.engine.position is None, 15)
            # paused: the next signal is skipped, not traded
            entries = bot.metrics.entries
            skipped = "entry signal skipped: paused by http"
            await wait_for(lambda: any(skipped in m for m in logs.messages()), 60)
            assert bot.metrics.entries == entries

            reply = await client.post("/api/resume", headers=auth)
            assert reply.status_code == 200 and not bot.engine.paused
            await wait_for(lambda: bot.metrics.entries > entries, 60)

            reply = await client.post("/api/pause", headers=auth)
            assert reply.status_code == 200 and bot.engine.paused
            trades = (await client.get("/api/trades")).json()["trades"]
            assert trades and {"symbol", "side", "qty", "entry", "exit", "pnl"} <= set(trades[0])

            reply = await client.post("/api/stop", headers=auth)
            assert reply.status_code == 200
            assert shutdown.requested.is_set() and shutdown.reason == "stop by http"
    # the ALERT capture ended with the bot
    assert bot.frontends is not None
    recent = bot.frontends.control.notifier.recent
    seen = len(recent)
    logger.warning("ALERT: after the bot stopped")
    assert len(recent) == seen
    journal = str(tmp_path / "journal.sqlite3")
    states = [r.data for r in read_records(journal, ("control_state",))]
    assert [(s["paused"], s["origin"]) for s in states] == [
        (True, "http"),
        (False, "http"),
        (True, "http"),
    ]
    messages = logs.messages()
    assert any(m == "command flatten from http" for m in messages)
    assert any("pause from 127.0.0.1 refused: missing or wrong token" in m for m in messages)
    assert not any(TOKEN in m for m in messages)


async def test_pause_survives_a_restart(tmp_path: Path, logs: LogCapture) -> None:
    settings = bot_settings(tmp_path, http__port=free_port(), http__token=TOKEN)
    async with sim_exchange(seed=3) as sim:
        async with running_bot(sim, settings) as (bot, _):
            base = f"http://127.0.0.1:{http_port(bot)}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                assert (await client.post("/api/pause", headers=headers)).status_code == 200
        async with running_bot(sim, settings) as (bot, _):
            assert bot.engine.paused and bot.engine.paused_by == "restored"
    assert any(m.startswith("restored pause (paused by http") for m in logs.messages())


async def test_restore_paused_with_no_journal_is_a_no_op(tmp_path: Path) -> None:
    assert await restore_paused(None, str(tmp_path / "none.sqlite3")) is False  # type: ignore[arg-type]


async def test_commands_refused_entirely_without_a_token(tmp_path: Path) -> None:
    settings = bot_settings(tmp_path, http__port=free_port())
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, shutdown):
        base = f"http://127.0.0.1:{http_port(bot)}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for verb in ("pause", "resume", "flatten", "stop"):
                reply = await client.post(f"/api/{verb}", headers={"Authorization": "Bearer x"})
                assert reply.status_code == 403, verb
                assert "http.token" in reply.json()["error"]
            assert (await client.get("/api/status")).status_code == 200
        assert not bot.engine.paused and not shutdown.requested.is_set()


def _ctl(action: str, url: str | None, token: str | None) -> int:
    args = argparse.Namespace(action=action, url=url, token=token, config=None)
    return main_ctl(args)


async def test_scalper_ctl_against_a_running_bot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = bot_settings(tmp_path, http__port=free_port(), http__token=TOKEN)
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, shutdown):
        url = f"http://127.0.0.1:{http_port(bot)}"
        await wait_engine(bot, lambda e: e.symbol is not None, timeout=30)
        assert await trio.to_thread.run_sync(_ctl, "status", url, None) == 0
        out = capsys.readouterr().out
        assert out.startswith(bot.engine.state.value) and f"| {bot.engine.symbol} |" in out
        assert await trio.to_thread.run_sync(_ctl, "pnl", url, None) == 0
        assert capsys.readouterr().out.startswith("day ")
        assert await trio.to_thread.run_sync(_ctl, "pause", url, "wrong") == 1
        assert "refused (401)" in capsys.readouterr().err
        assert not bot.engine.paused
        assert await trio.to_thread.run_sync(_ctl, "pause", url, TOKEN) == 0
        assert bot.engine.paused and capsys.readouterr().out.startswith("paused")
        assert await trio.to_thread.run_sync(_ctl, "status", url, None) == 0
        assert "(paused by http)" in capsys.readouterr().out
        assert await trio.to_thread.run_sync(_ctl, "resume", url, TOKEN) == 0
        assert not bot.engine.paused
        assert await trio.to_thread.run_sync(_ctl, "stop", url, TOKEN) == 0
        assert shutdown.requested.is_set()
    # the bot is gone: unreachable
    assert await trio.to_thread.run_sync(_ctl, "status", url, None) == 1
    assert "unreachable" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_dashboard_rendered_by_headless_chromium(tmp_path: Path) -> None:
    settings = bot_settings(tmp_path, http__port=free_port())
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, _):
        await wait_engine(bot, lambda e: e.symbol is not None, timeout=30)
        symbol = bot.engine.symbol
        assert CHROMIUM is not None
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            f"http://127.0.0.1:{http_port(bot)}/",
        ]
        with trio.fail_after(90):
            done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    dom = done.stdout.decode()
    state = re.search(r'id="state">([^<]*)<', dom)
    shown_symbol = re.search(r'id="symbol">([^<]*)<', dom)
    assert state is not None and state.group(1) in {s.value for s in EngineState}, dom[:2000]
    assert shown_symbol is not None and shown_symbol.group(1) == symbol
    assert re.search(r'id="mode"[^>]*>sim / ', dom)


# ---------------------------------------------------------------- Telegram


@attrs.define
class FakeBotApi:
    """A Bot API on loopback: queued updates for getUpdates, recorded sendMessage calls."""

    token: str
    updates: list[dict[str, Any]] = attrs.field(factory=list)
    sent: list[tuple[int, str]] = attrs.field(factory=list)
    paths: list[str] = attrs.field(factory=list)
    next_id: int = 1
    changed: trio.Event = attrs.field(factory=trio.Event)

    def say(self, chat_id: int, text: str) -> None:
        self.updates.append(
            {
                "update_id": self.next_id,
                "message": {
                    "message_id": self.next_id,
                    "date": 0,
                    "chat": {"id": chat_id, "type": "private"},
                    "text": text,
                },
            }
        )
        self.next_id += 1
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def app(self) -> Starlette:
        async def method(request: Request) -> Response:
            self.paths.append(request.url.path)
            if request.path_params["token"] != self.token:
                return JSONResponse(
                    {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
                )
            body = await request.json()
            name = request.path_params["method"]
            if name == "getUpdates":
                offset = body.get("offset", 0)
                with trio.move_on_after(min(float(body.get("timeout", 0)), 2.0)):
                    while not [u for u in self.updates if u["update_id"] >= offset]:
                        await self.changed.wait()
                result = [u for u in self.updates if u["update_id"] >= offset]
                return JSONResponse({"ok": True, "result": result})
            if name == "sendMessage":
                self.sent.append((body["chat_id"], body["text"]))
                self._wake()
                return JSONResponse({"ok": True, "result": {"message_id": len(self.sent)}})
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

        return Starlette(routes=[Route("/bot{token}/{method}", method, methods=["POST"])])

    def to(self, chat_id: int) -> list[str]:
        return [text for chat, text in self.sent if chat == chat_id]


@asynccontextmanager
async def fake_bot_api(token: str) -> AsyncIterator[tuple[FakeBotApi, str]]:
    fake = FakeBotApi(token=token)
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 0.2
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, fake.app(), config, mode="asgi"))  # type: ignore[arg-type]
        try:
            yield fake, binds[0]
        finally:
            nursery.cancel_scope.cancel()


async def wait_sent(fake: FakeBotApi, chat_id: int, pattern: str, timeout: float = 20) -> str:  # noqa: ASYNC109
    """The first message to ``chat_id`` matching ``pattern`` (bounded wait)."""
    with trio.fail_after(timeout):
        while True:
            for text in fake.to(chat_id):
                if re.search(pattern, text):
                    return text
            await fake.changed.wait()


async def test_telegram_end_to_end(tmp_path: Path, logs: LogCapture) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    stdlib = logging.getLogger("httpx")
    handler, level = Keep(), stdlib.level
    stdlib.addHandler(handler)
    stdlib.setLevel(logging.DEBUG)
    try:
        async with fake_bot_api(TG_TOKEN) as (fake, api_url):
            settings = bot_settings(
                tmp_path,
                telegram__token=TG_TOKEN,
                telegram__chat_ids=str(OWNER),
                telegram__api_url=api_url,
                telegram__poll_timeout_s=1,
                **HOLD,
            )
            async with sim_exchange(seed=3) as sim:
                stopped = trio.Event()
                async with trio.open_nursery() as nursery:

                    async def run() -> None:
                        async with running_bot(sim, settings) as (bot, shutdown):
                            holder.append((bot, shutdown))
                            await shutdown.requested.wait()
                        stopped.set()

                    holder: list[Any] = []
                    nursery.start_soon(run)
                    await wait_sent(fake, OWNER, r"^scalper started: mode sim")
                    bot, shutdown = holder[0]

                    fake.say(STRANGER, "/status")
                    fake.say(OWNER, "/status")
                    reply = await wait_sent(fake, OWNER, r"day pnl")
                    assert reply.startswith(bot.engine.state.value) or "|" in reply
                    assert fake.to(STRANGER) == ["This bot does not take commands from this chat."]

                    fake.say(OWNER, "/pause")
                    await wait_sent(fake, OWNER, r"^paused: no new entries")
                    assert bot.engine.paused_by == f"telegram:{OWNER}"
                    fake.say(OWNER, "/resume")
                    await wait_sent(fake, OWNER, r"^resumed")
                    await wait_engine(bot, lambda e: e.position is not None, timeout=60)
                    await wait_sent(fake, OWNER, r"^entry (Buy|Sell) ", timeout=10)
                    fake.say(OWNER, "/flatten")
                    await wait_sent(fake, OWNER, r"^flattening")
                    await wait_for(lambda: exchange_flat(sim) and bot.engine.position is None, 15)
                    await wait_sent(fake, OWNER, r"exit .*net pnl -?\d", timeout=10)
                    fake.say(OWNER, "/help")
                    await wait_sent(fake, OWNER, r"/flatten - close")
                    fake.say(OWNER, "/stop")
                    with trio.fail_after(30):
                        await stopped.wait()
                assert shutdown.reason == f"stop by telegram:{OWNER}"
                await wait_sent(fake, OWNER, r"^scalper stopped \(stop by telegram:\d+\): clean")
    finally:
        stdlib.removeHandler(handler)
        stdlib.setLevel(level)
    assert fake.to(STRANGER) == ["This bot does not take commands from this chat."]
    # httpx did log the requests, but never with the token
    assert any("getUpdates" in r for r in records)
    assert not any(TG_TOKEN in r for r in records)
    assert not any(TG_TOKEN in m for m in logs.messages())
    assert any(f"message from chat {STRANGER} refused" in m for m in logs.messages())
    assert any(m == f"command pause from telegram:{OWNER}" for m in logs.messages())
