"""Telegram: the control core's commands and notices through a Telegram bot.

Two tasks, both off the trading path:

* the poller long-polls ``getUpdates`` (httpx, under trio) and answers ``/status``,
  ``/pnl``, ``/pause``, ``/resume``, ``/flatten``, ``/stop`` and ``/help`` from the
  chats in ``telegram.chat_ids``. Any other chat gets one refusal line (once per
  chat and run, so the bot cannot be used to spam) and no data; it is logged.
* the sender takes notices from a bounded drop-oldest ``NoticeQueue``, coalesces a
  burst into one message, and sends it to every allowed chat at most once per
  ``MIN_INTERVAL_S`` per chat (Telegram allows about one message a second per chat).

Errors back off exponentially; a 429 waits its ``parameters.retry_after``. Nothing here
waits on trading or makes trading wait: notices are published without blocking and
dropped (counted) when Telegram cannot keep up.

The token: the Bot API wants it in the URL path (``/bot<token>/<method>``), and httpx
logs every request's URL. So the client talks to ``<api_url>/<method>`` and
``_TokenTransport``, below httpx's logging, adds the token to a copy of the request on
its way out: the URL httpx logs, and every exception we log, has no token in it
(and the log redactor knows the token as a second line of defence).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import trio
from loguru import logger

from ..config import TelegramSettings
from .notices import NoticeQueue
from .remote import ACTIONS, Control

__all__ = ["MAX_TEXT", "MIN_INTERVAL_S", "Telegram"]

#: at most one message per chat this often (s)
MIN_INTERVAL_S = 1.0
#: Telegram's message size limit is 4096 characters
MAX_TEXT = 4000
#: notices waiting for Telegram; beyond this the oldest is dropped (counted)
QUEUE_SIZE = 100
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
#: attempts per message before it is given up (counted)
SEND_ATTEMPTS = 4

HELP = (
    "/status - state, position, day's PnL\n"
    "/pnl - day's and session's PnL\n"
    "/pause - no new entries (exits and stops continue)\n"
    "/resume - allow entries again\n"
    "/flatten - close the position now (and pause)\n"
    "/stop - graceful shutdown\n"
    "/help - this list"
)


class _TokenTransport(httpx.AsyncBaseTransport):
    """Adds ``/bot<token>`` to the path of a copy of each request, below httpx's logs."""

    def __init__(self, token: str, inner: httpx.AsyncBaseTransport) -> None:
        self._token = token.encode()
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        prefix, _, method = request.url.raw_path.rpartition(b"/")
        url = request.url.copy_with(raw_path=prefix + b"/bot" + self._token + b"/" + method)
        outgoing = httpx.Request(
            request.method,
            url,
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(outgoing)

    async def aclose(self) -> None:
        await self._inner.aclose()


class TelegramError(Exception):
    """A Bot API call failed; ``retry_after`` is set for a 429."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class Telegram:
    """The poller and the sender of one bot, sharing one httpx client."""

    def __init__(
        self,
        settings: TelegramSettings,
        control: Control,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if settings.token is None:
            raise ValueError("telegram.token is not set")
        self._settings = settings
        self._control = control
        self._allowed = frozenset(settings.chat_ids)
        self._token = settings.token.reveal()
        self._client = httpx.AsyncClient(
            base_url=settings.api_url,
            transport=_TokenTransport(self._token, transport or httpx.AsyncHTTPTransport()),
            timeout=httpx.Timeout(10.0, read=settings.poll_timeout_s + 10.0),
        )
        self.queue: NoticeQueue = control.notifier.subscribe(QUEUE_SIZE)
        self._last_sent: dict[int, float] = {}
        self._chat_locks: dict[int, trio.Lock] = {}
        self._refused: set[int] = set()
        self._busy = False
        self._idle = trio.Event()
        #: messages given up after ``SEND_ATTEMPTS``, updates that could not be read
        self.send_failures = 0
        self.bad_updates = 0

    # ------------------------------------------------------------ tasks

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll and send until cancelled."""
        async with self._client, trio.open_nursery() as nursery:
            nursery.start_soon(self._poll_loop)
            nursery.start_soon(self._send_loop)
            logger.info("telegram: on, {} allowed chat(s)", len(self._allowed))
            task_status.started()

    async def drain(self) -> None:
        """Wait until every queued notice was sent (or given up). Callers bound it."""
        while len(self.queue) or self._busy:
            self._idle = trio.Event()
            await self._idle.wait()

    async def _poll_loop(self) -> None:
        offset: int | None = None
        backoff = BACKOFF_MIN_S
        while True:
            payload: dict[str, Any] = {
                "timeout": self._settings.poll_timeout_s,
                "allowed_updates": ["message"],
            }
            if offset is not None:
                payload["offset"] = offset
            try:
                updates = await self._call("getUpdates", payload)
            except TelegramError as exc:
                wait = exc.retry_after if exc.retry_after is not None else backoff
                logger.warning("telegram: getUpdates failed: {}; retry in {:.0f} s", exc, wait)
                await trio.sleep(wait)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            backoff = BACKOFF_MIN_S
            if not isinstance(updates, list):
                self.bad_updates += 1
                logger.warning("telegram: getUpdates result is not a list: skipped")
                await trio.sleep(BACKOFF_MIN_S)
                continue
            for update in updates:
                update_id = update.get("update_id") if isinstance(update, dict) else None
                if type(update_id) is not int:
                    self.bad_updates += 1
                    logger.warning("telegram: an update without update_id: skipped")
                    continue
                offset = update_id + 1
                await self._on_update(update)

    async def _on_update(self, update: dict[str, Any]) -> None:
        message = update.get("message")
        chat = message.get("chat") if isinstance(message, dict) else None
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        text = message.get("text") if isinstance(message, dict) else None
        if type(chat_id) is not int or not isinstance(text, str):
            return  # not a text message (a photo, an edit, a join): nothing to answer
        if chat_id not in self._allowed:
            logger.warning(
                "telegram: message from chat {} refused (not in telegram.chat_ids)", chat_id
            )
            if chat_id not in self._refused:
                self._refused.add(chat_id)
                await self._send_logged(chat_id, "This bot does not take commands from this chat.")
            return
        word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
        name = word.lstrip("/").split("@", 1)[0].lower()
        if not word.startswith("/") or name in ("help", "start"):
            await self._send_logged(chat_id, HELP)
            return
        if name not in ("status", "pnl", *ACTIONS):
            await self._send_logged(chat_id, f"unknown command /{name}\n{HELP}")
            return
        reply = await self._control.execute(name, f"telegram:{chat_id}")
        await self._send_logged(chat_id, reply.text if reply.ok else f"refused: {reply.text}")

    async def _send_loop(self) -> None:
        while True:
            notices = await self.queue.get_all()
            self._busy = True
            try:
                text = "\n".join(n.text for n in notices)
                if len(text) > MAX_TEXT:
                    text = text[: MAX_TEXT - 20] + "\n... (cut)"
                for chat_id in sorted(self._allowed):
                    await self._send_logged(chat_id, text)
            finally:
                self._busy = False
                if not len(self.queue):
                    self._idle.set()

    # ------------------------------------------------------------ calls

    async def _send_logged(self, chat_id: int, text: str) -> None:
        """Send with the per-chat rate limit and retries; a failure is logged, not raised."""
        lock = self._chat_locks.setdefault(chat_id, trio.Lock())
        async with lock:
            backoff = BACKOFF_MIN_S
            for attempt in range(1, SEND_ATTEMPTS + 1):
                wait = self._last_sent.get(chat_id, -math.inf) + MIN_INTERVAL_S
                if wait > trio.current_time():
                    await trio.sleep(wait - trio.current_time())
                self._last_sent[chat_id] = trio.current_time()
                try:
                    await self._call("sendMessage", {"chat_id": chat_id, "text": text})
                except TelegramError as exc:
                    pause = exc.retry_after if exc.retry_after is not None else backoff
                    backoff = min(BACKOFF_MAX_S, backoff * 2)
                    logger.warning(
                        "telegram: sendMessage to {} failed ({}/{}): {}",
                        chat_id,
                        attempt,
                        SEND_ATTEMPTS,
                        exc,
                    )
                    if attempt < SEND_ATTEMPTS:
                        await trio.sleep(pause)
                else:
                    return
            self.send_failures += 1
            logger.error("telegram: message to chat {} given up", chat_id)

    async def _call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call; its ``result``, or ``TelegramError`` (never with the token)."""
        try:
            response = await self._client.post(f"/{method}", json=payload)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TelegramError(self._clean(f"{type(exc).__name__}: {exc}")) from None
        if not isinstance(body, dict):
            raise TelegramError(f"HTTP {response.status_code}: not a JSON object")
        if body.get("ok") is True:
            return body.get("result")
        retry_after: float | None = None
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            retry_after = float(parameters["retry_after"])
        elif response.status_code == 429:
            retry_after = BACKOFF_MIN_S
        why = str(body.get("description", "no description"))
        raise TelegramError(self._clean(f"HTTP {response.status_code}: {why}"), retry_after)

    def _clean(self, text: str) -> str:
        return text.replace(self._token, "****")
