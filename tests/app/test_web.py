"""The HTTP app in-process (httpx's ASGI transport): routes, auth rules, and reads
guarded by the token when the bot listens beyond loopback."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from scalper.app.prom import build_registry
from scalper.app.web import build_app, dashboard_html
from scalper.config import Secret

from .test_remote_core import Harness

TOKEN = "web-token-0123456789abcdef"


def client(h: Harness, token: str | None, *, protect_reads: bool = False) -> httpx.AsyncClient:
    app = build_app(
        h.control,
        build_registry(h.control),
        Secret(token) if token else None,
        protect_reads=protect_reads,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot")


def test_dashboard_is_shipped_and_polls_the_api() -> None:
    page = dashboard_html()
    assert 'id="state"' in page and 'id="symbol"' in page and "api/status" in page
    assert 'name="viewport"' in page  # readable on a phone
    assert "http://" not in page and "https://" not in page  # no external resources


async def test_reads_are_open_on_loopback_commands_need_the_token() -> None:
    h = Harness()
    async with client(h, TOKEN) as c:
        status = await c.get("/api/status")
        assert status.status_code == 200 and status.json()["symbol"] == "SOLUSDT"
        assert (await c.get("/api/trades")).json() == {"trades": []}
        metrics = await c.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert (await c.post("/api/pause")).status_code == 401
        assert (await c.post("/api/pause", headers={"Authorization": "Basic x"})).status_code == 401
        assert not h.engine.paused
        reply = await c.post("/api/pause", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reply.status_code == 200 and reply.json()["ok"] is True and h.engine.paused
        assert (await c.get("/api/pause")).status_code == 405
        assert (await c.get("/nope")).status_code == 404


async def test_status_carries_the_line_telegram_answers_with() -> None:
    # rendered once, bot side: ``scalper ctl status`` prints this field as it comes
    h = Harness()
    async with client(h, TOKEN) as c:
        line = (await c.get("/api/status")).json()["line"]
    reply = await h.control.execute("status", "test")
    assert line == reply.text and line.startswith(h.engine.state.value)
    assert "| SOLUSDT |" in line and "day pnl" in line


@pytest.mark.parametrize("path", ["/api/status", "/api/trades", "/metrics"])
async def test_reads_need_the_token_beyond_loopback(path: str) -> None:
    h = Harness()
    async with client(h, TOKEN, protect_reads=True) as c:
        assert (await c.get(path)).status_code == 401
        assert (await c.get(path, headers={"Authorization": "Bearer no"})).status_code == 401
        ok = await c.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert (await c.get("/")).status_code == 200  # the page holds no data


async def test_no_token_refuses_every_command_403(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    async with client(h, None) as c:
        for verb in ("pause", "resume", "flatten", "stop"):
            reply = await c.post(f"/api/{verb}", headers={"Authorization": "Bearer x"})
            assert reply.status_code == 403
        assert not h.shutdown.requested.is_set()
