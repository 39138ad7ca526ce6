"""The report as text (``scalper report``), JSON (``--format json``) and CSV (``csv``).

Money is printed with four decimals in the text and as exact decimal strings in JSON
and CSV, so a script reading them loses nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..core.pnl import Report, RoundTrip
from .compute import Group, by_day, by_symbol

__all__ = ["format_csv", "format_json", "format_report", "money", "pct"]


def _utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def money(value: Decimal) -> str:
    return f"{value:.4f}"


def _table(title: str, key: str, groups: Sequence[Group]) -> list[str]:
    lines = [
        title,
        f"  {key:<12} {'trips':>6} {'win':>7} {'gross':>12} {'fees':>12} {'net':>12}",
    ]
    for g in groups:
        lines.append(
            f"  {g.key:<12} {g.trips:>6} {pct(g.wins / g.trips if g.trips else None):>7} "
            f"{money(g.gross):>12} {money(g.fees):>12} {money(g.net):>12}"
        )
    if not groups:
        lines.append("  (no round trips)")
    return lines


def format_report(report: Report) -> str:
    """The text ``scalper report`` prints: totals, per day, per symbol, the trades."""
    hold = report.avg_hold_s
    lines = [
        f"fills: {len(report.fills)}  round trips: {len(report.trips)}  "
        f"wins: {report.wins}  win rate: {pct(report.win_rate)}",
        f"gross PnL: {money(report.realised)}  fees: {money(report.fees)}"
        + (f" ({money(report.open_fees)} on a position still open)" if report.open_fees else "")
        + (f"  funding: {money(report.funding)}" if report.funding else "")
        + f"  net PnL: {money(report.net)}",
        f"max drawdown: {money(report.max_drawdown)}  average hold: "
        + ("-" if hold is None else f"{hold:.1f} s")
        + f"  fees / |gross|: {pct(report.fee_share)}",
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
            f"{t.entry:>11.6} {t.exit:>11} {money(t.net):>10} {t.hold_s:>6.0f}s"
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
