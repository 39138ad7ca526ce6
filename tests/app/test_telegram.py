"""Telegram under MockClock with an in-memory Bot API (``httpx.MockTransport``):
rate limit per chat, coalesced bursts, 429 ``retry_after``, backoff while down, the
bounded queue dropping the oldest, strangers refused once, and the token kept out of
every URL httpx logs and every line we log.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from loguru import logger

from scalper.app.telegram import MIN_INTERVAL_S, QUEUE_SIZE, Telegram
from scalper.config import Secret, TelegramSettings

from .test_remote_core import Harness

TOKEN = "987654:token-that-must-never-be-logged"
OWNER, OTHER, STRANGER = 11, 22, 33


@attrs.define
class BotApi:
    """The Bot API's two methods, in memory; times are trio (virtual) times."""

    updates: list[dict[str, Any]] = attrs.field(factory=list)
    sent: list[tuple[float, int, str]] = attrs.field(factory=list)
    paths: list[str] = attrs.field(factory=list)
    #: sendMessage answers: "ok", "429", "500", "down" (a connection error)
    script: list[str] = attrs.field(factory=list)
    fail_all: bool = False
    attempts: int = 0

    def say(self, chat_id: Any, text: Any, update_id: Any = None) -> None:
        uid = update_id if update_id is not None else len(self.updates) + 1
        self.updates.append({"update_id": uid, "message": {"chat": {"id": chat_id}, "text": text}})

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        body = json.loads(request.content or b"{}")
        if request.url.path.endswith("/getUpdates"):
            offset = body.get("offset", 0)
            fresh = [u for u in self.updates if u.get("update_id", offset) >= offset]
            self.updates = [u for u in self.updates if "update_id" in u]  # malformed: once
            if not fresh:
                await trio.sleep(body.get("timeout", 1))
            return httpx.Response(200, json={"ok": True, "result": fresh})
        self.attempts += 1
        outcome = "down" if self.fail_all else (self.script.pop(0) if self.script else "ok")
        if outcome == "down":
            raise httpx.ConnectError(f"refused: {request.url}")
        if outcome == "429":
            return httpx.Response(
                429,
                json={
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests",
                    "parameters": {"retry_after": 7},
                },
            )
        if outcome == "500":
            return httpx.Response(500, json={"ok": False, "description": "Internal"})
        self.sent.append((trio.current_time(), body["chat_id"], body["text"]))
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})

    def to(self, chat_id: int) -> list[str]:
        return [text for _, chat, text in self.sent if chat == chat_id]


def settings(**kw: Any) -> TelegramSettings:
    base: dict[str, Any] = {
        "token": Secret(TOKEN),
        "chat_ids": (OWNER, OTHER),
        "api_url": "https://api.telegram.test",
        "poll_timeout_s": 5,
    }
    base.update(kw)
    return TelegramSettings(**base)


@pytest.fixture
def lines() -> Iterator[list[str]]:
    captured: list[str] = []
    handler = logger.add(
        lambda m: captured.append(str(m)), level="TRACE", format="{message} {extra}"
    )

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    keep = Keep()
    httpx_logger = logging.getLogger("httpx")
    level = httpx_logger.level
    httpx_logger.addHandler(keep)
    httpx_logger.setLevel(logging.DEBUG)
    yield captured
    httpx_logger.removeHandler(keep)
    httpx_logger.setLevel(level)
    logger.remove(handler)


async def running(api: BotApi, h: Harness, nursery: trio.Nursery, **kw: Any) -> Telegram:
    telegram = Telegram(settings(**kw), h.control, transport=httpx.MockTransport(api.handler))
    await nursery.start(telegram.run)
    return telegram


async def test_commands_from_allowed_chats_strangers_refused_once(
    autojump_clock: trio.testing.MockClock, lines: list[str]
) -> None:
    api, h = BotApi(), Harness()
    api.say(OWNER, "/status")
    api.say(STRANGER, "/status")
    api.say(STRANGER, "/pause")
    api.say(OWNER, "/pause@scalper_bot")
    api.say(OWNER, "hello")
    api.say(OWNER, "/dance")
    api.say(OWNER, None)  # a photo: nothing to answer
    api.say("not-an-int", "/stop")
    api.updates.append({"no": "update_id"})
    async with trio.open_nursery() as nursery:
        telegram = await running(api, h, nursery)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    owner = api.to(OWNER)
    assert owner[0].startswith("Idle | SOLUSDT | flat | day pnl 0.0000")
    assert owner[1].startswith("paused: no new entries")
    assert owner[2].startswith("/status - ")  # help for plain text
    assert owner[3].startswith("unknown command /dance")
    assert len(owner) == 4
    assert api.to(STRANGER) == ["This bot does not take commands from this chat."]
    assert h.engine.paused_by == f"telegram:{OWNER}"
    assert not h.shutdown.requested.is_set()
    assert telegram.bad_updates == 1
    assert sum("message from chat 33 refused" in line for line in lines) == 2
    # the token is in the real path (the Bot API needs it) and nowhere we log
    assert all(path.startswith(f"/bot{TOKEN}/") for path in api.paths)
    assert any("api.telegram.test/getUpdates" in line for line in lines)  # httpx logged...
    assert not any(TOKEN in line for line in lines)  # ...without the token


async def test_notices_are_rate_limited_per_chat_and_bursts_coalesced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api, h = BotApi(), Harness()
    async with trio.open_nursery() as nursery:
        await running(api, h, nursery)
        for i in range(5):
            h.control.notifier.publish("alert", f"a{i}")
        await trio.sleep(0.1)
        for i in range(5, 10):
            h.control.notifier.publish("alert", f"a{i}")
            await trio.sleep(0.1)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    for chat in (OWNER, OTHER):
        texts = api.to(chat)
        assert "\n".join(texts).split("\n") == [f"a{i}" for i in range(10)]
        assert len(texts) < 10  # coalesced
        times = [t for t, c, _ in api.sent if c == chat]
        assert all(b - a >= MIN_INTERVAL_S - 1e-9 for a, b in itertools.pairwise(times))


async def test_429_waits_retry_after_and_errors_back_off(
    autojump_clock: trio.testing.MockClock, lines: list[str]
) -> None:
    api, h = BotApi(script=["429", "500", "ok"]), Harness()
    async with trio.open_nursery() as nursery:
        telegram = await running(api, h, nursery, chat_ids=(OWNER,))
        start = trio.current_time()
        h.control.notifier.publish("halt", "halted: test")
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert api.to(OWNER) == ["halted: test"]
    sent_at = api.sent[0][0] - start
    assert sent_at >= 7 + 2  # retry_after 7 s, then a backoff after the 500
    assert telegram.send_failures == 0
    assert any("Too Many Requests" in line for line in lines)


async def test_telegram_down_drops_the_oldest_never_blocks_publishing(
    autojump_clock: trio.testing.MockClock, lines: list[str]
) -> None:
    api, h = BotApi(fail_all=True), Harness()
    async with trio.open_nursery() as nursery:
        telegram = await running(api, h, nursery, chat_ids=(OWNER,))
        h.control.notifier.publish("alert", "first")
        await trio.testing.wait_all_tasks_blocked()
        for i in range(QUEUE_SIZE + 20):
            h.control.notifier.publish("alert", f"n{i}")  # never awaits: trading is not slowed
        assert len(telegram.queue) == QUEUE_SIZE and telegram.queue.dropped == 20
        assert h.control.notifier.dropped == 20 + h.notices.dropped  # every queue counts
        # "first" is given up after its attempts (1 + 2 + 4 s of backoff); the batch
        # after it is retrying when Telegram comes back
        await trio.sleep(7.5)
        api.fail_all = False
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert telegram.send_failures >= 1  # "first" was given up after its attempts
    delivered = "\n".join(api.to(OWNER)).split("\n")
    assert delivered[0] == "n20" and delivered[-1] == f"n{QUEUE_SIZE + 19}"
    assert not any(TOKEN in line for line in lines)  # ConnectError texts carry the URL


async def test_drain_waits_for_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    api, h = BotApi(), Harness()
    async with trio.open_nursery() as nursery:
        telegram = await running(api, h, nursery, chat_ids=(OWNER,))
        h.control.notifier.publish("stop", "scalper stopped (x): clean")
        with trio.fail_after(5):
            await telegram.drain()
        assert api.to(OWNER) == ["scalper stopped (x): clean"]
        nursery.cancel_scope.cancel()


def test_no_token_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"telegram\.token"):
        Telegram(TelegramSettings(), None)  # type: ignore[arg-type]
