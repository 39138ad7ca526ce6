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
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from .core.pnl import ZERO, Fill, Ledger, Report, RoundTrip, build_report

__all__ = [
    "Fill",
    "Ledger",
    "Report",
    "RoundTrip",
    "build_report",
    "format_csv",
    "format_json",
    "format_report",
    "main_report",
    "render_plot",
]

# ------------------------------------------------------------------ grouping


@attrs.frozen(kw_only=True)
class _Group:
    key: str
    trips: int
    wins: int
    gross: Decimal
    fees: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.fees

    def as_json(self, key_name: str) -> dict[str, Any]:
        return {
            key_name: self.key,
            "round_trips": self.trips,
            "wins": self.wins,
            "gross_pnl": str(self.gross),
            "fees": str(self.fees),
            "net_pnl": str(self.net),
        }


def _groups(trips: Sequence[RoundTrip], key: Any) -> list[_Group]:
    out: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        out.setdefault(key(trip), []).append(trip)
    return [
        _Group(
            key=k,
            trips=len(ts),
            wins=sum(1 for t in ts if t.net > 0),
            gross=sum((t.pnl for t in ts), ZERO),
            fees=sum((t.fees for t in ts), ZERO),
        )
        for k, ts in sorted(out.items())
    ]


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).date().isoformat()


def by_day(report: Report) -> list[_Group]:
    """Round trips grouped by the UTC day they closed."""
    return _groups(report.trips, lambda t: _day(t.closed_ms))


def by_symbol(report: Report) -> list[_Group]:
    """Round trips grouped by symbol."""
    return _groups(report.trips, lambda t: t.symbol)


# ------------------------------------------------------------------ output


def _utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _money(value: Decimal) -> str:
    return f"{value:.4f}"


def _table(title: str, key: str, groups: Sequence[_Group]) -> list[str]:
    lines = [
        title,
        f"  {key:<12} {'trips':>6} {'win':>7} {'gross':>12} {'fees':>12} {'net':>12}",
    ]
    for g in groups:
        lines.append(
            f"  {g.key:<12} {g.trips:>6} {_pct(g.wins / g.trips if g.trips else None):>7} "
            f"{_money(g.gross):>12} {_money(g.fees):>12} {_money(g.net):>12}"
        )
    if not groups:
        lines.append("  (no round trips)")
    return lines


def format_report(report: Report) -> str:
    """The text ``scalper report`` prints: totals, per day, per symbol, the trades."""
    hold = report.avg_hold_s
    lines = [
        f"fills: {len(report.fills)}  round trips: {len(report.trips)}  "
        f"wins: {report.wins}  win rate: {_pct(report.win_rate)}",
        f"gross PnL: {_money(report.realised)}  fees: {_money(report.fees)}"
        + (f" ({_money(report.open_fees)} on a position still open)" if report.open_fees else "")
        + (f"  funding: {_money(report.funding)}" if report.funding else "")
        + f"  net PnL: {_money(report.net)}",
        f"max drawdown: {_money(report.max_drawdown)}  average hold: "
        + ("-" if hold is None else f"{hold:.1f} s")
        + f"  fees / |gross|: {_pct(report.fee_share)}",
        "",
        *_table("per day (UTC, by close)", "day", by_day(report)),
        "",
        *_table("per symbol", "symbol", by_symbol(report)),
        "",
        f"{'closed (UTC)':<19}  {'symbol':<10} {'side':<4} {'qty':>10} "
        f"{'entry':>11} {'exit':>11} {'net':>10} {'hold':>7}",
    ]
    for t in report.trips:
        lines.append(
            f"{_utc(t.closed_ms):<19}  {t.symbol:<10} {t.side:<4} {t.qty:>10} "
            f"{t.entry:>11.6} {t.exit:>11} {_money(t.net):>10} {t.hold_s:>6.0f}s"
        )
    return "\n".join(lines) + "\n"


def _trip_json(t: RoundTrip) -> dict[str, Any]:
    return {
        "opened": _iso(t.opened_ms),
        "closed": _iso(t.closed_ms),
        "symbol": t.symbol,
        "side": t.side,
        "qty": str(t.qty),
        "entry": str(t.entry),
        "exit": str(t.exit),
        "gross_pnl": str(t.pnl),
        "fees": str(t.fees),
        "net_pnl": str(t.net),
        "hold_s": t.hold_s,
    }


def format_json(report: Report) -> str:
    """One JSON object: totals, ``days``, ``symbols`` and ``trades`` (money as strings)."""
    payload = {
        "fills": len(report.fills),
        "round_trips": len(report.trips),
        "wins": report.wins,
        "win_rate": report.win_rate,
        "gross_pnl": str(report.realised),
        "fees": str(report.fees),
        "open_position_fees": str(report.open_fees),
        "funding": str(report.funding),
        "net_pnl": str(report.net),
        "max_drawdown": str(report.max_drawdown),
        "avg_hold_s": report.avg_hold_s,
        "fee_share_of_gross": report.fee_share,
        "days": [g.as_json("day") for g in by_day(report)],
        "symbols": [g.as_json("symbol") for g in by_symbol(report)],
        "trades": [_trip_json(t) for t in report.trips],
    }
    return json.dumps(payload, indent=2) + "\n"


_CSV_COLUMNS = (
    "opened",
    "closed",
    "symbol",
    "side",
    "qty",
    "entry",
    "exit",
    "gross_pnl",
    "fees",
    "net_pnl",
    "hold_s",
)


def format_csv(report: Report) -> str:
    """The round trips as CSV, one per row, with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for t in report.trips:
        writer.writerow(_trip_json(t))
    return out.getvalue()


# ------------------------------------------------------------------ plot


def render_plot(report: Report, path: str, *, width_px: int = 1400, height_px: int = 700) -> None:
    """Draw the net equity curve to a PNG at ``path`` (matplotlib, Agg backend).

    A step line of net realised PnL over UTC time, entries (triangles, by side) and
    exits (crosses) marked on it, drawdowns from the running peak shaded red, a zero
    line, labelled axes and a title with the totals. Raises ``ModuleNotFoundError``
    when matplotlib (the ``plot`` extra) is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    try:

        def x_of(ts_ms: int) -> float:  # matplotlib's date number of a UTC time
            return float(mdates.date2num(datetime.fromtimestamp(ts_ms / 1000, tz=UTC)))  # type: ignore[no-untyped-call]

        times = [x_of(ts) for ts, _ in report.equity]
        values = [float(v) for _, v in report.equity]
        if report.equity:
            # start from 0 just before the first fill, so the first fee shows as a step
            times = [x_of(report.equity[0][0] - 1000), *times]
            values = [0.0, *values]
        peaks: list[float] = []
        peak = 0.0
        for v in values:
            peak = max(peak, v)
            peaks.append(peak)
        ax.step(times, values, where="post", color="#1f5fbf", lw=1.6, label="net PnL (after fees)")
        if times:
            ax.fill_between(
                times, values, peaks, step="post", color="#d62728", alpha=0.18, label="drawdown"
            )
        at = {ts: float(v) for ts, v in report.equity}
        opens_long: list[tuple[float, float]] = []
        opens_short: list[tuple[float, float]] = []
        exits: list[tuple[float, float]] = []
        positions: dict[str, Decimal] = {}
        for fill in report.fills:
            size = positions.get(fill.symbol, ZERO)
            signed = fill.qty if fill.side == "Buy" else -fill.qty
            point = (x_of(fill.ts_ms), at.get(fill.ts_ms, 0.0))
            if size == 0 or (size > 0) == (signed > 0):
                (opens_long if signed > 0 else opens_short).append(point)
            else:
                exits.append(point)
            positions[fill.symbol] = size + signed
        for points, marker, color, label in (
            (opens_long, "^", "#2ca02c", "entry long"),
            (opens_short, "v", "#ff7f0e", "entry short"),
            (exits, "X", "#222222", "exit"),
        ):
            if points:
                ax.scatter(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker=marker,
                    color=color,
                    s=48,
                    zorder=3,
                    label=label,
                )
        ax.axhline(0.0, color="#888888", lw=0.8)
        ax.xaxis_date(tz=UTC)
        locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("net realised PnL (USDT)")
        ax.set_title(
            f"scalper equity: {len(report.trips)} round trips, win rate "
            f"{_pct(report.win_rate)}, net {_money(report.net)} USDT, "
            f"fees {_money(report.fees)}, max drawdown {_money(report.max_drawdown)}"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------ CLI


class _UsageError(Exception):
    """A bad flag value: one line, exit 2."""


def _fills_from_journal(path: str) -> tuple[list[Fill], list[tuple[int, Decimal]]]:
    """The journal's fills and funding payments (``funding`` records, if any)."""
    from .app.journal import read_records

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
    # Positions are replayed from the first fill, so a window cuts whole round trips:
    # a trade counts where it closed. Fills and the equity curve are cut the same way.
    full = build_report(fills)

    def inside(ts: int) -> bool:
        return (since is None or ts >= since) and (until is None or ts < until)

    trips = tuple(t for t in full.trips if inside(t.closed_ms))
    kept_fills = tuple(f for f in full.fills if inside(f.ts_ms))
    fees = sum((f.fee for f in kept_fills), ZERO)
    paid = sum((amount for ts, amount in funding if inside(ts)), ZERO)
    realised = sum((t.pnl for t in trips), ZERO)
    # the window's curve starts at 0: the net before its first fill is taken off
    offset: Decimal | None = None
    previous = ZERO
    equity: list[tuple[int, Decimal]] = []
    for ts, value in full.equity:
        if inside(ts):
            if offset is None:
                offset = previous
            equity.append((ts, value - offset))
        previous = value
    report = Report(
        trips=trips,
        fees=fees,
        realised=realised,
        equity=tuple(equity),
        fills=kept_fills,
        funding=paid,
    )
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
