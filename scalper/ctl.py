"""``scalper ctl``: the command-line client of a running bot's HTTP API.

``scalper ctl status|pnl|pause|resume|flatten|stop [--url URL] [--token T]``. The URL
and token default to the settings (``http.host``/``http.port``, ``http.token`` from
``SCALPER_HTTP__TOKEN`` or ``http.token_file``), so on the bot's own machine no flag
is needed. Answers are one short line. Exit 0 when done, 1 when refused or the bot
cannot be reached, 2 for bad usage or settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import httpx

from .config import Settings

__all__ = ["main_ctl"]

#: how long one request may take
TIMEOUT_S = 10.0


def _pnl_line(s: dict[str, Any]) -> str:
    held = s.get("position")
    upnl = held["upnl"] if held else "0"
    return (
        f"day {s.get('day_net_pnl')} (unrealised {upnl}) | session net "
        f"{s.get('session_net_pnl')} | loss headroom {s.get('daily_loss_headroom')}"
    )


def _default_url(load_settings: Callable[[], Settings] | None) -> tuple[str | None, str | None]:
    """URL and token from the settings (what the bot on this machine uses)."""
    if load_settings is None:
        return None, None
    settings = load_settings()
    http = settings.http
    token = http.token.reveal() if http.token else None
    if not http.port:
        return None, token
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{http.port}", token


def main_ctl(args: argparse.Namespace, load_settings: Callable[[], Settings] | None = None) -> int:
    """Entry point of ``scalper ctl``; returns the exit code.

    ``load_settings`` gives the settings the defaults come from (the CLI passes its
    loader, which exits 2 on a bad value); without it only the flags count.
    """
    url, token = args.url, args.token
    if url is None or token is None:
        default_url, default_token = _default_url(load_settings)
        url = url or default_url
        token = token or default_token
    if url is None:
        sys.stderr.write("error: http.port: 0 (the bot serves no API); set it or pass --url\n")
        return 2
    url = url.rstrip("/")
    try:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            # reads need the token too when the bot listens beyond loopback
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            if args.action in ("status", "pnl"):
                response = client.get(f"{url}/api/status", headers=headers)
            else:
                response = client.post(f"{url}/api/{args.action}", headers=headers)
    except httpx.HTTPError as exc:
        sys.stderr.write(f"scalper ctl: bot unreachable at {url}: {type(exc).__name__}\n")
        return 1
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        why = body.get("error") if isinstance(body, dict) else None
        sys.stderr.write(f"scalper ctl: refused ({response.status_code}): {why or 'no reason'}\n")
        return 1
    if args.action == "status":
        # the bot renders the line (the one its Telegram /status answers with)
        print(body.get("line", ""))  # noqa: T201 - the command's answer, not a log line
    elif args.action == "pnl":
        print(_pnl_line(body))  # noqa: T201
    else:
        print(body.get("text", "done"))  # noqa: T201
    return 0
