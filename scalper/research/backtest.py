"""``scalper backtest``: recordings through the bot's own engine, filled by the matching engine.

Each recording (``scalper record`` or ``scalper import-bybit``) plays through
``replay.player.Replayer`` (the bot's parser, book and ``Engine`` on the recorded clock)
with a ``research.venue.MatchingVenue`` carrying out the orders: the simulator's matcher
driven by the recorded book and tape, with fees, latency, queue position and the
exchange-side stop. The result is the ``scalper report`` of the fills (net after fees)
plus the counts a researcher checks first (frames, trades, parse errors, resyncs) and a
digest of the ordered fills: the same files and settings give the same digest, always.

Settings are the bot's (``settings.toml`` < ``--config`` < environment < ``--set``), so a
backtest runs the strategy exactly as configured for trading. ``--set`` also takes the
backtest's own keys, which are not bot settings: ``backtest.maker_fee`` and
``backtest.taker_fee`` (fractions, 0.0002 = 0.02 %) and ``backtest.latency_ms``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from scalper.config import Settings, SettingsError, load_settings
from scalper.replay.player import Emit, Replayer, play
from scalper.replay.recording import RecordingError, RecordingReader, open_recording
from scalper.replay.venue import BacktestFill, MatchingVenue, VenueSettings

__all__ = [
    "BACKTEST_KEYS",
    "BacktestError",
    "BacktestResult",
    "BacktestSpec",
    "main_backtest",
    "run_backtest",
    "split_sets",
]

#: ``--set`` keys of the backtest itself (not bot settings), with their defaults
BACKTEST_KEYS = ("backtest.maker_fee", "backtest.taker_fee", "backtest.latency_ms")


class BacktestError(Exception):
    """Bad usage or input: ``key: why``, printed as one ``error:`` line (exit 2)."""


@attrs.frozen(kw_only=True)
class BacktestSpec:
    """Everything one run depends on: the files, the bot's settings, the venue's."""

    paths: tuple[str, ...]
    settings: Settings
    venue: VenueSettings


@attrs.frozen(kw_only=True)
class BacktestResult:
    """What a backtest saw and did (the report, the counts, the digest)."""

    files: tuple[str, ...]
    symbols: tuple[str, ...]
    records: int
    book_frames: int
    trade_frames: int
    trades: int
    parse_errors: int
    file_errors: int
    resyncs: int
    orders: int
    fills: int
    maker_fills: int
    stops_fired: int
    round_trips: int
    wins: int
    fees: Decimal
    gross_pnl: Decimal
    net_pnl: Decimal
    max_drawdown: Decimal
    digest: str
    final_state: str
    #: the position left open at the end of the last file ("flat" or "Buy 5.7 @ 174.62")
    open_position: str
    #: its PnL at the last mid (or trade), before fees
    unrealised_pnl: Decimal
    report_text: str
    equity: tuple[Decimal, ...]
    #: CPU time of the run (one core; not part of the digest: it varies)
    seconds: float
    #: the ``scalper report`` of the fills (what ``--plot`` draws)
    report: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def frames(self) -> int:
        """Book and trade frames played."""
        return self.book_frames + self.trade_frames

    @property
    def frames_per_s(self) -> float:
        """Frames played per CPU second (on one core, whatever else the machine runs)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def win_rate(self) -> float:
        """Share of round trips with a positive result (0 when none)."""
        return self.wins / self.round_trips if self.round_trips else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` object (money as numbers rounded to 1e-8)."""
        return {
            "files": list(self.files),
            "symbols": list(self.symbols),
            "records": self.records,
            "book_frames": self.book_frames,
            "trade_frames": self.trade_frames,
            "trades": self.trades,
            "parse_errors": self.parse_errors,
            "file_errors": self.file_errors,
            "resyncs": self.resyncs,
            "orders": self.orders,
            "fills": self.fills,
            "maker_fills": self.maker_fills,
            "taker_fills": self.fills - self.maker_fills,
            "stops_fired": self.stops_fired,
            "round_trips": self.round_trips,
            "wins": self.wins,
            "win_rate": round(self.win_rate, 6),
            "fees": _num(self.fees),
            "gross_pnl": _num(self.gross_pnl),
            "net_pnl": _num(self.net_pnl),
            "max_drawdown": _num(self.max_drawdown),
            "digest": self.digest,
            "final_state": self.final_state,
            "open_position": self.open_position,
            "unrealised_pnl": _num(self.unrealised_pnl),
            "seconds": round(self.seconds, 3),
            "frames_per_s": round(self.frames_per_s),
        }

    def render(self) -> str:
        """The text output: the report of the fills, then the backtest's counts."""
        lines = [
            self.report_text.rstrip("\n"),
            f"backtest of {', '.join(self.files)} ({', '.join(self.symbols)})",
            f"  frames: {self.book_frames} book, {self.trade_frames} trade ({self.trades} "
            f"trades); parse errors: {self.parse_errors}; unreadable lines: "
            f"{self.file_errors}; resyncs: {self.resyncs}",
            f"  orders: {self.orders}; fills: {self.fills} ({self.maker_fills} maker, "
            f"{self.fills - self.maker_fills} taker); exchange stops fired: {self.stops_fired}",
            f"  round trips: {self.round_trips}; win rate: {self.win_rate:.1%}; "
            f"gross {self.gross_pnl:.4f}, fees {self.fees:.4f}, net {self.net_pnl:.4f} USDT; "
            f"max drawdown {self.max_drawdown:.4f}",
            f"  final state: {self.final_state}; open at the end: {self.open_position} "
            f"(unrealised {self.unrealised_pnl:.4f}, not in the PnL above); digest {self.digest}",
            f"  speed: {self.frames} frames in {self.seconds:.2f} CPU s = "
            f"{self.frames_per_s:,.0f} frames/s on one core",
        ]
        return "\n".join(lines) + "\n"


def _num(value: Decimal) -> float:
    return float(round(value, 8))


# ---------------------------------------------------------------- settings


def split_sets(items: Iterable[str]) -> tuple[dict[str, object], dict[str, str]]:
    """``--set section.key=value`` items -> (bot setting overrides, backtest keys)."""
    bot: dict[str, object] = {}
    own: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise BacktestError(f"--set: expected section.key=value, got {item!r}")
        if key.startswith("backtest."):
            if key not in BACKTEST_KEYS:
                raise BacktestError(f"{key}: unknown key (known: {', '.join(BACKTEST_KEYS)})")
            own[key] = value.strip()
        else:
            bot[key] = value.strip()
    return bot, own


def venue_settings(
    own: Mapping[str, str], settings: Settings, *, latency_ms: int | None = None
) -> VenueSettings:
    """The venue's settings from the ``backtest.*`` keys (a flag wins over ``--set``)."""
    values: dict[str, Any] = {
        "confirm_timeout_ms": int(settings.execution.confirm_timeout_s * 1000),
    }
    for key, text in own.items():
        name = key.partition(".")[2]
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise BacktestError(f"{key}: {text!r} is not a number") from None
        if name == "latency_ms":
            if not number.is_finite() or number != number.to_integral_value():
                raise BacktestError(f"{key}: must be a whole number of ms, got {text!r}")
            values[name] = int(number)
        else:
            values[name] = number
    if latency_ms is not None:
        values["latency_ms"] = latency_ms
    try:
        return VenueSettings(**values)
    except ValueError as exc:
        name = str(exc).partition(":")[0]
        raise BacktestError(f"backtest.{name}: {str(exc).partition(': ')[2]}") from None


def load_spec(
    paths: Sequence[str],
    sets: Iterable[str],
    *,
    config: str | None = None,
    latency_ms: int | None = None,
) -> BacktestSpec:
    """Settings for a run; ``BacktestError`` (``key: why``) on anything bad."""
    bot, own = split_sets(sets)
    try:
        settings = load_settings(config_path=config, overrides=bot)
    except SettingsError as exc:
        raise BacktestError(str(exc)) from None
    return BacktestSpec(
        paths=tuple(paths),
        settings=settings,
        venue=venue_settings(own, settings, latency_ms=latency_ms),
    )


# ---------------------------------------------------------------- running


def _report(fills: Sequence[BacktestFill], symbol_of: Sequence[str]) -> tuple[str, Any]:
    """The ``scalper report`` of the fills: the one call into ``report`` (text, Report)."""
    from scalper.report import Fill, build_report, format_report

    report = build_report(
        Fill(ts_ms=f.t, symbol=s, side=f.side.value, qty=f.qty, price=f.price, fee=f.fee)
        for f, s in zip(fills, symbol_of, strict=True)
    )
    return format_report(report), report


def _plot(report: Any, path: str) -> None:
    """The equity chart, drawn by ``scalper report``'s plot (next to ``_report``: one place)."""
    from scalper.report import render_plot

    render_plot(report, path)


def run_backtest(
    spec: BacktestSpec,
    *,
    emit: Emit | None = None,
    verbose: bool = False,
    perf: Callable[[], float] = time.process_time,
) -> BacktestResult:
    """Play every file of ``spec`` (each a session of its own) and collect the result."""
    from scalper.config import engine_config
    from scalper.core.strategy import make_session_tag

    started = perf()
    fills: list[BacktestFill] = []
    symbol_of: list[str] = []
    symbols: list[str] = []
    counts: Counter[str] = Counter()
    final_state = ""
    open_position = "flat"
    unrealised = Decimal(0)
    for path in spec.paths:
        try:
            handle = open_recording(path)
        except OSError as exc:
            raise BacktestError(f"{path}: cannot read: {exc.strerror or exc}") from None
        with handle:
            try:
                reader = RecordingReader(handle)
            except (RecordingError, OSError, EOFError) as exc:
                raise BacktestError(f"{path}: {exc}") from None
            header = reader.header
            venues: list[MatchingVenue] = []

            def factory(
                book: Any, instrument: Any, made: list[MatchingVenue] = venues
            ) -> MatchingVenue:
                venue = MatchingVenue(book, instrument, spec.venue)
                made.append(venue)
                return venue

            player = Replayer(
                header,
                engine_config(spec.settings, make_session_tag(header.start_ms)),
                confirm_timeout_ms=spec.venue.confirm_timeout_ms,
                emit=emit,
                verbose=verbose,
                venue=factory,
            )
            try:
                play(reader, player)
            except (OSError, EOFError) as exc:  # a .gz cut short: what was read counts
                counts["file_errors"] += 1
                if emit is not None:
                    emit(f"{path}: read stopped: {exc}")
        (venue,) = venues
        symbols.append(header.symbol)
        fills.extend(venue.fills)
        symbol_of.extend([header.symbol] * len(venue.fills))
        counts["records"] += player.records
        counts["book_frames"] += player.market.book_messages
        counts["trade_frames"] += player.market.trade_messages
        counts["trades"] += player.public_trades
        counts["parse_errors"] += sum(player.stats.counts.values())
        counts["file_errors"] += sum(reader.errors.values()) + sum(player.unknown_events.values())
        counts["resyncs"] += player.resyncs
        counts["orders"] += venue.orders
        counts["stops_fired"] += venue.stops_fired
        final_state = player.engine.state.value
        summary = player.summary()
        open_position, unrealised = summary.position, summary.unrealised_pnl
    text, report = _report(fills, symbol_of)
    equity = tuple(v for _, v in report.equity)
    digest = hashlib.sha256("".join(f.digest_line() for f in fills).encode()).hexdigest()
    return BacktestResult(
        files=spec.paths,
        symbols=tuple(dict.fromkeys(symbols)),
        records=counts["records"],
        book_frames=counts["book_frames"],
        trade_frames=counts["trade_frames"],
        trades=counts["trades"],
        parse_errors=counts["parse_errors"],
        file_errors=counts["file_errors"],
        resyncs=counts["resyncs"],
        orders=counts["orders"],
        fills=len(fills),
        maker_fills=sum(1 for f in fills if f.maker),
        stops_fired=counts["stops_fired"],
        round_trips=len(report.trips),
        wins=report.wins,
        fees=report.fees,
        gross_pnl=report.realised,
        net_pnl=report.net,
        max_drawdown=report.max_drawdown,
        digest=digest[:16],
        final_state=final_state,
        open_position=open_position,
        unrealised_pnl=unrealised,
        report_text=text,
        equity=equity,
        seconds=perf() - started,
        report=report,
    )


# ---------------------------------------------------------------- CLI


def main_backtest(args: argparse.Namespace) -> int:
    """Entry point of ``scalper backtest``; returns the exit code."""
    import orjson

    from scalper.logging import configure_from_settings

    if args.latency_ms is not None and args.latency_ms < 0:
        sys.stderr.write(f"error: --latency-ms: must be >= 0, got {args.latency_ms}\n")
        return 2
    try:
        spec = load_spec(args.files, args.set, config=args.config, latency_ms=args.latency_ms)
        configure_from_settings(spec.settings)
        out = sys.stdout
        emit: Emit | None = None
        if args.verbose and args.format == "text":

            def emit(line: str) -> None:
                out.write(line + "\n")

        result = run_backtest(spec, emit=emit)
    except BacktestError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.format == "json":
        out.write(orjson.dumps(result.to_json()).decode() + "\n")
    else:
        out.write(result.render())
    if args.plot:
        _plot(result.report, args.plot)
        if args.format == "text":
            out.write(f"equity curve written to {args.plot}\n")
    return 0
