"""``scalper record`` and ``scalper replay``: the command-line ends of this package.

``record`` resolves where the public stream is (flags > settings > the mode's Bybit
host; in sim mode with nothing configured it starts the built-in exchange, as
``scalper run`` does), reads the symbol's rules from instruments-info (else
``--tick-size``), and records until ``--seconds`` or Ctrl+C. Public data needs no API
keys, so ``--mode live`` works without them.

``replay`` loads the strategy settings the bot would use (``--config``, environment),
and plays the file through ``Replayer`` (its orders filled by the backtest's matching
venue). Output goes to stdout (transitions, fills, then the summary); the parser's
warnings about bad frames go to the log on stderr. Exit codes: 0 done, 1 runtime
failure, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import attrs
import trio
from loguru import logger

from ..config import BYBIT_HOSTS, Settings, SettingsError, load_settings, overrides_from_args
from ..core.rules import check_positive_decimal
from ..logging import configure_from_settings, configure_logging
from .player import Replayer, play
from .recording import (
    RecordingError,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    open_recording,
)

__all__ = ["main_record", "main_replay"]

_SECRET_KEYS = ("exchange.api_key", "exchange.api_secret")


class _UsageError(Exception):
    """A bad flag or input: one line on stderr, exit 2."""


@attrs.frozen(kw_only=True)
class _Source:
    """Where to record from: ws URL ("" = start the built-in exchange) and REST URL."""

    ws_url: str
    rest_url: str


def _error(text: str, code: int) -> int:
    """One ``error: ...`` line on stderr; the exit code (2: usage, 1: the run failed)."""
    sys.stderr.write(f"error: {text}\n")
    return code


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _rest_for_ws(ws_url: str) -> str:
    """The REST base that goes with a public stream URL.

    Bybit's own stream hosts map to their API hosts; anything else (the simulator,
    a proxy) is assumed to serve REST on the same host and port.
    """
    for rest, public, _private in BYBIT_HOSTS.values():
        if ws_url.rstrip("/") == public:
            return rest
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def _record_source(args: argparse.Namespace) -> tuple[_Source, Settings | None]:
    """The stream and REST URLs from flags and settings (see the module docstring)."""
    try:
        settings = load_settings(config_path=args.config, overrides=overrides_from_args(args))
    except SettingsError as exc:
        mode = args.mode
        if exc.key not in _SECRET_KEYS or mode not in BYBIT_HOSTS:
            raise _UsageError(str(exc)) from None
        # Public market data needs no keys: take the mode's hosts without them.
        rest, public, _ = BYBIT_HOSTS[mode]
        ws = args.ws_public_url or public
        rest_url = args.rest_url or (rest if not args.ws_public_url else _rest_for_ws(ws))
        return _Source(ws_url=ws, rest_url=rest_url), None
    ex = settings.exchange
    ws = ex.ws_public_url
    if not ws:
        return _Source(ws_url="", rest_url=""), settings
    rest_url = ex.rest_url if (args.rest_url or not args.ws_public_url) else _rest_for_ws(ws)
    return _Source(ws_url=ws, rest_url=rest_url or _rest_for_ws(ws)), settings


def _check_seconds(seconds: float | None) -> None:
    if seconds is not None and not seconds > 0:
        raise _UsageError(f"--seconds: must be > 0, got {seconds}")


def _tick_flag(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return check_positive_decimal(Decimal(value))  # the rule of every tick size
    except InvalidOperation:
        raise _UsageError(f"--tick-size: {value!r} is not a number") from None
    except ValueError as exc:
        raise _UsageError(f"--tick-size: {exc}") from None


def main_record(args: argparse.Namespace) -> int:
    """Entry point of ``scalper record``; returns the exit code."""
    try:
        _check_seconds(args.seconds)
        tick_flag = _tick_flag(args.tick_size)
        source, settings = _record_source(args)
    except _UsageError as exc:
        return _error(str(exc), 2)
    if settings is not None:
        configure_from_settings(settings)
    else:
        configure_logging(args.log_level or "INFO", "human", None, ())
    symbol = args.symbol.strip().upper()
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or f"{symbol}-{stamp}.jsonl")
    if not args.out and settings is not None:  # in the data dir
        out = Path(settings.data.dir) / out
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        return trio.run(_record, source, symbol, tick_flag, out, args.seconds)
    except _UsageError as exc:
        return _error(str(exc), 2)
    except OSError as exc:
        return _error(str(exc), 1)


async def _record(
    source: _Source, symbol: str, tick_flag: Decimal | None, out: Path, seconds: float | None
) -> int:
    from .record import (
        SymbolNotListed,
        fetch_clock_offset,
        fetch_instrument,
        record_stream,
        topics_for,
        wall_ms,
    )

    async with AsyncExitStack() as stack:
        ws_url, rest_url = source.ws_url, source.rest_url
        if not ws_url:
            from ..sim import SimConfig, open_sim

            sim = await stack.enter_async_context(open_sim(SimConfig(port=0)))
            ws_url, rest_url = sim.ws_public_url, sim.rest_url
            logger.info("sim mode: recording from the built-in simulated exchange")
        instrument = None
        offset = None
        if rest_url:
            try:
                instrument = await fetch_instrument(rest_url, symbol)
            except SymbolNotListed as exc:
                raise _UsageError(str(exc)) from None
            if instrument is not None:  # reachable: worth asking the time too
                offset = await fetch_clock_offset(rest_url)
        if instrument is not None:
            tick = instrument.tick_size
            if tick_flag is not None and tick_flag != tick:
                logger.warning("--tick-size {} ignored: instruments-info says {}", tick_flag, tick)
        elif tick_flag is not None:
            tick = tick_flag
        else:
            raise _UsageError(
                f"tick size of {symbol} unknown: instruments-info not reachable at "
                f"{rest_url or '(no REST URL)'}; pass --tick-size"
            )
        header = RecordingHeader(
            symbol=symbol,
            tick_size=tick,
            url=ws_url,
            start_ms=wall_ms(),
            topics=tuple(topics_for(symbol)),
            instrument=instrument,
            clock_offset_ms=offset or 0,
        )
        handle: IO[bytes] = stack.enter_context(out.open("wb"))
        writer = RecordingWriter(handle)
        writer.header(header)
        sys.stdout.write(
            f"recording {symbol} from {ws_url} to {out}"
            f" ({f'{seconds:g}s' if seconds else 'until Ctrl+C'})\n"
        )
        sys.stdout.flush()
        stop = trio.Event()
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, stop)
            stats = await record_stream(ws_url, symbol, tick, writer, seconds=seconds, stop=stop)
            nursery.cancel_scope.cancel()
    elapsed = time.monotonic() - started
    errors = sum(stats.parse_errors.values())
    sys.stdout.write(
        f"captured {stats.frames} frames ({stats.market.book_messages} book, "
        f"{stats.market.trade_messages} trades, {errors} unparseable) in {elapsed:.1f}s "
        f"to {out}; {stats.reconnects} reconnects, {stats.resubscribes} resubscribes; "
        f"stopped: {stats.stop_reason}\n"
    )
    return 0


async def _watch_signals(stop: trio.Event) -> None:
    """Ctrl+C / SIGTERM end the recording cleanly (file flushed, counts printed)."""
    import signal

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()


def main_replay(args: argparse.Namespace) -> int:
    """Entry point of ``scalper replay``; returns the exit code."""
    from ..config import engine_config
    from ..core.strategy import make_session_tag

    try:
        settings = load_settings(config_path=args.config, overrides=overrides_from_args(args))
    except SettingsError as exc:
        return _error(str(exc), 2)
    speed = None if args.as_fast_as_possible else args.speed
    if speed is not None and not speed > 0:
        return _error(f"--speed: must be > 0, got {speed}", 2)
    configure_from_settings(settings)
    path = Path(args.file)
    try:
        handle = open_recording(path)
    except OSError as exc:
        return _error(f"cannot read {path}: {exc.strerror or exc}", 2)
    with handle:
        try:
            reader = RecordingReader(handle)
        except RecordingError as exc:
            return _error(f"{path}: {exc}", 2)
        header = reader.header
        out = sys.stdout

        def emit(line: str) -> None:
            out.write(line + "\n")

        emit(
            f"replaying {path}: {header.symbol} (tick {header.tick_size}) recorded "
            f"{_utc(header.start_ms)} from {header.url or '?'}"
            f"{'' if speed is None else f' at {speed:g}x'}"
        )
        player = Replayer(
            header,
            engine_config(settings, make_session_tag(header.start_ms)),
            confirm_timeout_ms=int(settings.execution.confirm_timeout_s * 1000),
            emit=emit,
            verbose=args.verbose,
        )
        interrupted = False
        try:
            play(reader, player, speed=speed)
        except KeyboardInterrupt:
            interrupted = True
            emit("interrupted (Ctrl+C): summary so far")
        for line in player.summary(reader.errors).render():
            emit(line)
        out.flush()
    return 130 if interrupted else 0
