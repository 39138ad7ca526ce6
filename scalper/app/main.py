"""``scalper run``: check the mode, set up logging, start the exchange if simulated, run.

Safety lives here, before anything connects: mode ``live`` (mainnet, real money)
needs ``--live`` on the command line as well as in the settings, and says so loudly.
With no keys and mode ``sim`` the built-in simulated exchange starts in-process on
loopback, so a newcomer sees the whole bot working with nothing configured.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack

import trio
from loguru import logger

from ..config import Settings
from ..logging import configure_from_settings
from .bot import BotOptions, Endpoints, run_bot
from .shutdown import ShutdownRequest, watch_signals
from .status import StatusConsole

__all__ = ["main_run"]

#: Bybit's hosts per mode (reference section 1); demo has no public stream of its own
_HOSTS = {
    "demo": Endpoints(
        rest_url="https://api-demo.bybit.com",
        ws_public_url="wss://stream.bybit.com/v5/public/linear",
        ws_private_url="wss://stream-demo.bybit.com/v5/private",
    ),
    "testnet": Endpoints(
        rest_url="https://api-testnet.bybit.com",
        ws_public_url="wss://stream-testnet.bybit.com/v5/public/linear",
        ws_private_url="wss://stream-testnet.bybit.com/v5/private",
    ),
    "live": Endpoints(
        rest_url="https://api.bybit.com",
        ws_public_url="wss://stream.bybit.com/v5/public/linear",
        ws_private_url="wss://stream.bybit.com/v5/private",
    ),
}

SIM_KEY, SIM_SECRET = "sim-key", "sim-secret"


def _configured_endpoints(settings: Settings) -> Endpoints | None:
    """Endpoints from the settings, or None when the built-in exchange must start."""
    ex = settings.exchange
    if ex.rest_url:
        base = _HOSTS.get(ex.mode)
        return Endpoints(
            rest_url=ex.rest_url,
            ws_public_url=ex.ws_public_url or (base.ws_public_url if base else ""),
            ws_private_url=ex.ws_private_url or (base.ws_private_url if base else ""),
        )
    if ex.mode == "sim":
        return None
    return _HOSTS[ex.mode]


def _check_mode(settings: Settings, live: bool) -> str | None:
    """The one-line refusal for an unsafe start, or None."""
    ex = settings.exchange
    if ex.mode == "live" and not live:
        return "exchange.mode: mode is live (mainnet, real money): add --live to confirm"
    if live and ex.mode != "live":
        return f"exchange.mode: --live given but mode is {ex.mode!r}"
    if ex.rest_url and (not ex.ws_public_url or not ex.ws_private_url) and ex.mode == "sim":
        return "exchange.ws_public_url: with rest_url set in sim mode, set both WebSocket URLs"
    return None


async def _run(settings: Settings, duration_s: float | None, console: StatusConsole | None) -> int:
    shutdown = ShutdownRequest()
    endpoints = _configured_endpoints(settings)
    ex = settings.exchange
    with trio.CancelScope() as hard_stop:
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, shutdown, hard_stop)
            async with AsyncExitStack() as stack:
                if endpoints is None:
                    from ..sim import SimConfig, open_sim

                    sim = await stack.enter_async_context(open_sim(SimConfig(port=0)))
                    endpoints = Endpoints(
                        rest_url=sim.rest_url,
                        ws_public_url=sim.ws_public_url,
                        ws_private_url=sim.ws_private_url,
                    )
                    key, secret = SIM_KEY, SIM_SECRET
                    logger.info("built-in simulated exchange at {}", sim.rest_url)
                else:
                    key = ex.api_key.reveal() if ex.api_key else SIM_KEY
                    secret = ex.api_secret.reveal() if ex.api_secret else SIM_SECRET
                options = BotOptions(
                    endpoints=endpoints,
                    api_key=key,
                    api_secret=secret,
                    duration_s=duration_s,
                    console=console,
                )
                await run_bot(settings, options, shutdown)
            nursery.cancel_scope.cancel()
    return 1 if hard_stop.cancelled_caught else 0


def main_run(settings: Settings, *, live: bool, duration_s: float | None) -> int:
    """Entry point of ``scalper run``; returns the process exit code."""
    refusal = _check_mode(settings, live)
    if refusal:
        sys.stderr.write(f"error: {refusal}\n")
        return 2
    console = (
        StatusConsole(sys.stdout)
        if sys.stdout.isatty() and settings.log.format == "human"
        else None
    )
    configure_from_settings(settings, stream=console)  # type: ignore[arg-type]
    if settings.exchange.mode == "live":
        logger.warning("=" * 60)
        logger.warning("LIVE TRADING ON BYBIT MAINNET: REAL MONEY IS AT RISK")
        logger.warning("=" * 60)
    else:
        logger.info("mode {}: no real money at risk", settings.exchange.mode)
    try:
        return trio.run(_run, settings, duration_s, console)
    except Exception:  # noqa: BLE001 - the top of the program: one clear line, exit 1
        logger.exception("scalper stopped on an unexpected error")
        return 1
