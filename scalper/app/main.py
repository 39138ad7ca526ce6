"""``scalper run``: check the mode, set up logging, start the exchange if simulated, run.

Safety lives here, before anything connects: mode ``live`` (mainnet, real money)
needs ``--live`` on the command line as well as in the settings, and says so loudly.
With no keys and mode ``sim`` the built-in simulated exchange starts in-process on
loopback, so a newcomer sees the whole bot working with nothing configured.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs
import trio
from loguru import logger

from ..bybit.errors import BybitError
from ..config import ExchangeSettings, Secret, Settings
from ..logging import configure_from_settings
from .bot import BotOptions, HedgeModeError, run_bot
from .journal import JournalFailed
from .sdnotify import Notifier
from .shutdown import ShutdownRequest, watch_signals
from .status import StatusConsole

if TYPE_CHECKING:
    from ..sim import Sim

__all__ = ["main_run"]

#: the simulator's default credentials (``scalper exchange`` and the built-in one)
SIM_KEY, SIM_SECRET = "sim-key", "sim-secret"


def _builtin_exchange(settings: Settings) -> bool:
    """True when the built-in exchange must start: sim mode and no exchange configured.

    Outside sim mode the settings always hold all three URLs (``config`` fills in
    Bybit's hosts for the mode when they are not given).
    """
    ex = settings.exchange
    return ex.mode == "sim" and not ex.rest_url


def _replace_exchange(settings: Settings, exchange: ExchangeSettings, origin: str) -> Settings:
    """``settings`` with ``exchange``; ``sources`` names ``origin`` for each changed key,
    so nothing that prints where a value came from names a source it did not come from."""
    sources = dict(settings.sources)
    for field in attrs.fields(ExchangeSettings):
        if getattr(exchange, field.name) != getattr(settings.exchange, field.name):
            sources[f"exchange.{field.name}"] = origin
    return attrs.evolve(settings, exchange=exchange, sources=MappingProxyType(sources))


def _with_sim_keys(settings: Settings) -> Settings:
    """``settings`` signing with the simulator's key pair."""
    exchange = attrs.evolve(
        settings.exchange, api_key=Secret(SIM_KEY), api_secret=Secret(SIM_SECRET)
    )
    return _replace_exchange(settings, exchange, "the simulator's key pair")


def _on_simulator(settings: Settings, sim: Sim) -> Settings:
    """The run's settings on the built-in simulator: its URLs and its key pair, so
    that ``settings.exchange`` says where this run's exchange is, whichever it is."""
    exchange = attrs.evolve(
        settings.exchange,
        rest_url=sim.rest_url,
        ws_public_url=sim.ws_public_url,
        ws_private_url=sim.ws_private_url,
    )
    return _with_sim_keys(_replace_exchange(settings, exchange, "the built-in exchange"))


def _with_credentials(settings: Settings) -> Settings:
    """The configured key pair; in sim mode the simulator's defaults when none are set.

    Never the simulator's for a real exchange: config refuses demo/testnet/live
    without keys, so the fallback cannot send sim credentials to Bybit.
    """
    ex = settings.exchange
    if ex.api_key is not None and ex.api_secret is not None:
        return settings
    if ex.mode != "sim":
        raise ValueError("exchange.api_key: required outside sim mode")
    return _with_sim_keys(settings)


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


async def _run(
    settings: Settings,
    duration_s: float | None,
    console: StatusConsole | None,
    notifier: Notifier | None = None,
    reset_halt: bool = False,
) -> int:
    shutdown = ShutdownRequest()
    options = BotOptions(
        duration_s=duration_s, console=console, notifier=notifier, reset_halt=reset_halt
    )
    with trio.CancelScope() as hard_stop:
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, shutdown, hard_stop)
            async with AsyncExitStack() as stack:
                if _builtin_exchange(settings):
                    from ..sim import SimConfig, open_sim

                    sim = await stack.enter_async_context(open_sim(SimConfig(port=0)))
                    settings = _on_simulator(settings, sim)
                    logger.info("built-in simulated exchange at {}", sim.rest_url)
                else:
                    settings = _with_credentials(settings)
                clean = await run_bot(settings, options, shutdown)
            nursery.cancel_scope.cancel()
    if hard_stop.cancelled_caught:
        return 1
    return 0 if clean else 1


def main_run(
    settings: Settings,
    *,
    live: bool,
    duration_s: float | None,
    panel: bool = True,
    reset_halt: bool = False,
) -> int:
    """Entry point of ``scalper run``; returns the process exit code.

    ``panel=False`` (``--no-panel``) keeps plain log lines in a terminal too.
    """
    refusal = _check_mode(settings, live)
    if refusal:
        sys.stderr.write(f"error: {refusal}\n")
        return 2
    console = (
        StatusConsole(sys.stdout)
        if panel and sys.stdout.isatty() and settings.log.format == "human"
        else None
    )
    configure_from_settings(settings, stream=console)  # type: ignore[arg-type]
    if settings.exchange.mode == "live":
        logger.warning("=" * 60)
        logger.warning("LIVE TRADING ON BYBIT MAINNET: REAL MONEY IS AT RISK")
        logger.warning("=" * 60)
    else:
        logger.info("mode {}: no real money at risk", settings.exchange.mode)
    # systemd (Type=notify) READY / WATCHDOG / STATUS / STOPPING; a no-op
    # without NOTIFY_SOCKET
    notifier = Notifier.from_env()
    try:
        return trio.run(_run, settings, duration_s, console, notifier, reset_halt)
    except Exception as exc:  # noqa: BLE001 - the top of the program: one line, an exit code
        return stop_line(exc)
    finally:
        notifier.stopping()  # a no-op when the graceful stop already said so
        notifier.close()


#: which failure names the stop when several ended the tree together (first wins)
_PRIORITY: tuple[type[BaseException], ...] = (HedgeModeError, JournalFailed, BybitError)


def stop_line(exc: BaseException) -> int:
    """Log the one line that says why the bot stopped; return the exit code.

    A hedge-mode account is a set-up problem (``error: hedge mode ...``, exit 2). The
    rest is exit 1 with ``scalper stopped: ...``: a failed journal, the exchange
    refusing us or unreachable (our orders were swept on the way out), or a bug, whose
    traceback goes to the debug log rather than the operator's screen.
    """
    # the root cause first: a failure that has one (the writer's own error) over its echo
    # in the tasks that could no longer journal
    leaves = sorted(_leaves(exc), key=lambda leaf: leaf.__cause__ is None)
    primary = next(
        (leaf for kind in _PRIORITY for leaf in leaves if isinstance(leaf, kind)), leaves[0]
    )
    if isinstance(primary, HedgeModeError):
        sys.stderr.write(f"error: {primary}\n")
        return 2
    if isinstance(primary, BybitError | JournalFailed):
        logger.error("scalper stopped: {}: {}", type(primary).__name__, primary)
    else:
        logger.error(
            "scalper stopped on an unexpected error: {}: {}", type(primary).__name__, primary
        )
        logger.opt(exception=primary).debug("traceback of the unexpected error")
    return 1


def _leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside a (possibly nested) exception group, or the error itself."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    out: list[BaseException] = []
    for inner in exc.exceptions:
        out.extend(_leaves(inner))
    return out
