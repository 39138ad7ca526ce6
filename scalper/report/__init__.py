"""``scalper report``: round trips, PnL, drawdown and an equity chart from the journal.

The journal's ``fill`` records (one per order outcome with a fill: side, qty, price,
fee) are replayed through a one-way position per symbol (``Ledger``): a fill that
reduces the position realises PnL against the average entry price, exactly as
Bybit's one-way mode does, and each such close is one round trip carrying its share
of the entry fees, its exit fee and how long the position was held. ``funding``
records, when the journal has any, are added to the net.

Totals: round trips, fills, win rate (round trips whose net, after fees, is > 0),
gross PnL, fees, funding, net PnL, the largest drawdown of the net equity curve,
the average hold and the fees' share of the gross. Tables per UTC day and per
symbol. ``--format json`` prints one object (money as exact decimal strings), ``csv``
the round trips. ``--plot FILE.png`` draws the equity curve with matplotlib (the
optional ``plot`` extra): dated axis, entries and exits marked, drawdowns shaded.

The journal is found exactly as ``scalper run`` writes it: ``journal.path`` from the
settings (``--config``, environment, ``--journal``), relative paths in ``data.dir``.

This module reads the journal and runs the command; the grouping and the time window
are ``report.compute``, the text, JSON and CSV ``report.formats``, the chart
``report.plot``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core.pnl import Fill, Ledger, Report, RoundTrip, build_report
from .compute import by_day, by_symbol, window
from .formats import format_csv, format_json, format_report
from .plot import render_plot

__all__ = [
    "Fill",
    "Ledger",
    "Report",
    "RoundTrip",
    "build_report",
    "by_day",
    "by_symbol",
    "format_csv",
    "format_json",
    "format_report",
    "main_report",
    "parse_when",
    "render_plot",
]


class _UsageError(Exception):
    """A bad flag value: one line, exit 2."""


def _fills_from_journal(path: str) -> tuple[list[Fill], list[tuple[int, Decimal]]]:
    """The journal's fills and funding payments (``funding`` records, if any)."""
    from ..app.journal import read_records

    fills: list[Fill] = []
    funding: list[tuple[int, Decimal]] = []
    for record in read_records(path, kinds=("fill", "funding")):
        data = record.data
        if record.kind == "funding":
            funding.append((record.ts_ms, Decimal(str(data.get("amount", "0")))))
            continue
        fills.append(
            Fill(
                ts_ms=record.ts_ms,
                symbol=record.symbol,
                side=str(data["side"]),
                qty=Decimal(str(data["qty"])),
                price=Decimal(str(data["price"])),
                fee=Decimal(str(data.get("fee", "0"))),
            )
        )
    return fills, funding


def parse_when(flag: str, value: str | None, *, end: bool) -> int | None:
    """``--since`` / ``--until`` as epoch ms (UTC); a bare date's ``end`` is its midnight
    after, so ``--until 2026-12-01`` includes that whole day."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise _UsageError(
            f"{flag}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC), got {value!r}"
        ) from None
    return int(moment.timestamp() * 1000)


def main_report(args: argparse.Namespace, settings: Any = None) -> int:
    """Entry point of ``scalper report`` (``settings`` loaded by the CLI, as for run)."""
    path = settings.journal.path if settings is not None else args.journal
    try:
        since = parse_when("--since", getattr(args, "since", None), end=False)
        until = parse_when("--until", getattr(args, "until", None), end=True)
    except _UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if not path or not Path(path).is_file():
        sys.stderr.write(f"error: journal.path: no journal at {path}\n")
        return 2
    fills, funding = _fills_from_journal(path)
    report = window(build_report(fills), funding, since, until)
    fmt = getattr(args, "format", "text")
    writer = {"text": format_report, "json": format_json, "csv": format_csv}[fmt]
    sys.stdout.write(writer(report))
    plot = getattr(args, "plot", None)
    if plot:
        try:
            render_plot(report, plot)
        except ModuleNotFoundError as exc:
            sys.stderr.write(
                f"error: --plot needs {exc.name}: pip install 'scalper[plot]' "
                "(make install includes it)\n"
            )
            return 1
        if fmt == "text":
            sys.stdout.write(f"equity chart written to {plot}\n")
    return 0
