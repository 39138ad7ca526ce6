"""``scalper exchange``: the simulated exchange as its own process.

Prints one line holding ``http://HOST:PORT`` once the socket accepts connections (tools
wait for it), serves until Ctrl+C / SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from .server import SimConfig, open_sim

__all__ = ["main_exchange"]


def _config(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        symbols=tuple(args.symbols) if args.symbols else None,
        rate=args.rate,
        api_key=args.api_key,
        api_secret=args.api_secret,
        host=args.host,
        port=args.port,
        hedge_mode=bool(getattr(args, "hedge_mode", False)),
    )


async def _serve(config: SimConfig) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_sim(config) as sim:
            sys.stdout.write(
                f"scalper exchange: listening on {sim.rest_url} "
                f"(ws {sim.ws_public_url}, {sim.ws_private_url}); Ctrl+C stops\n"
            )
            sys.stdout.flush()
            async for _ in signals:
                break
    sys.stdout.write("scalper exchange: stopped\n")
    sys.stdout.flush()


def main_exchange(args: argparse.Namespace) -> int:
    """Entry point of ``scalper exchange``; returns the exit code."""
    try:
        config = _config(args)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        trio.run(_serve, config)
    except ValueError as exc:  # unknown symbol, bad rate
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except OSError as exc:  # port in use
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
