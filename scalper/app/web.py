"""The bot's one HTTP server: metrics, the JSON API, the commands and the dashboard.

hypercorn (trio worker) serves a starlette app, in the bot's own nursery::

    GET  /                 the dashboard (static HTML + a script polling /api/status)
    GET  /metrics          Prometheus text (prom.py)
    GET  /api/status       JSON snapshot (Control.status)
    GET  /api/trades       recent round trips, newest first
    POST /api/<command>    pause | resume | flatten | stop, with Authorization: Bearer

Commands need the token: 401 without it or with a wrong one, and 403 for every
command when no token is configured at all (commands are then off, reads stay on).
The token is compared in constant time and never logged; a request's headers are
not logged either (hypercorn's access log stays off).

On loopback (the default) the reads are open, like any local ``/metrics``. Bound to
any other address, the reads need the token too (a Prometheus scraper sends it with
``authorization: {credentials: ...}``; the dashboard page itself holds no data and
sends the token it was given); binding there without a token is refused at start-up
(``config``: ``error: http.token: ...``, exit 2).
"""

from __future__ import annotations

import hmac
import logging
from functools import partial
from importlib import resources
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from loguru import logger
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..config import LOOPBACK_HOSTS, Secret
from .prom import CONTENT_TYPE, render
from .remote import ACTIONS, Control

__all__ = ["build_app", "dashboard_html", "serve_http"]


def dashboard_html() -> str:
    """The dashboard page, shipped as package data next to this module."""
    return resources.files("scalper.app").joinpath("dashboard.html").read_text(encoding="utf-8")


def build_app(
    control: Control,
    registry: CollectorRegistry,
    token: Secret | None,
    *,
    protect_reads: bool = False,
) -> Starlette:
    """The ASGI app for one bot; ``protect_reads``: GETs of data need the token too."""
    page = dashboard_html()
    expected = token.reveal().encode() if token else None

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return (
            expected is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), expected)
        )

    def unauthorised() -> Response:
        return JSONResponse(
            {"ok": False, "error": "unauthorized"}, 401, headers={"WWW-Authenticate": "Bearer"}
        )

    def guarded(handler: Any) -> Any:
        async def read(request: Request) -> Response:
            if protect_reads and not authorised(request):
                return unauthorised()
            response: Response = await handler(request)
            return response

        return read

    async def index(_request: Request) -> Response:
        return HTMLResponse(page)

    async def metrics(_request: Request) -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE)

    async def status(_request: Request) -> Response:
        return JSONResponse(control.status())

    async def trades(_request: Request) -> Response:
        return JSONResponse({"trades": control.trades()})

    async def command(request: Request) -> Response:
        name = request.path_params["command"]
        if name not in ACTIONS:
            return JSONResponse({"ok": False, "error": f"unknown command {name!r}"}, 404)
        peer = request.client.host if request.client else "?"
        if expected is None:
            logger.warning("http: {} from {} refused: no http.token is set", name, peer)
            return JSONResponse(
                {"ok": False, "error": "commands are disabled: set http.token"}, 403
            )
        if not authorised(request):
            logger.warning("http: {} from {} refused: missing or wrong token", name, peer)
            return unauthorised()
        reply = await control.execute(name, "http")
        body: dict[str, Any] = {"ok": reply.ok, "text": reply.text}
        return JSONResponse(body, 200 if reply.ok else 409)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/api/status", guarded(status), methods=["GET"]),
        Route("/api/trades", guarded(trades), methods=["GET"]),
        Route("/api/{command}", command, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def serve_http(
    control: Control,
    registry: CollectorRegistry,
    *,
    host: str,
    port: int,
    token: Secret | None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``started(port)`` once listening (``port=0``: ephemeral)."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    # through stdlib logging, which scalper.logging forwards to loguru (with redaction)
    config.errorlog = logging.getLogger("hypercorn.error")
    config.loglevel = "WARNING"
    config.graceful_timeout = 0.5
    app = build_app(control, registry, token, protect_reads=host not in LOOPBACK_HOSTS)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, mode="asgi")  # type: ignore[arg-type]
        )
        bound = int(binds[0].rsplit(":", 1)[1])
        shown = f"[{host}]" if ":" in host else host
        commands = "on (bearer token)" if token else "off (no http.token)"
        logger.info(
            "http on http://{}:{}/ (dashboard, /metrics, /api); commands {}", shown, bound, commands
        )
        task_status.started(bound)
