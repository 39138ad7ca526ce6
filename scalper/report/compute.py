"""The report's numbers beyond the ledger's: groups by day and symbol, a time window.

The ledger (``core.pnl``) replays every fill; what ``scalper report`` adds is how the
round trips are grouped in its tables and how ``--since`` / ``--until`` cut a replay
without cutting a round trip in half (a trade counts where it closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from ..core.pnl import ZERO, Report, RoundTrip

__all__ = ["Group", "by_day", "by_symbol", "window"]


@attrs.frozen(kw_only=True)
class Group:
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


def _groups(trips: Sequence[RoundTrip], key: Any) -> list[Group]:
    out: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        out.setdefault(key(trip), []).append(trip)
    return [
        Group(
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


def by_day(report: Report) -> list[Group]:
    """Round trips grouped by the UTC day they closed."""
    return _groups(report.trips, lambda t: _day(t.closed_ms))


def by_symbol(report: Report) -> list[Group]:
    """Round trips grouped by symbol."""
    return _groups(report.trips, lambda t: t.symbol)


def window(
    full: Report, funding: Sequence[tuple[int, Decimal]], since: int | None, until: int | None
) -> Report:
    """The part of ``full`` (replayed from the first fill) inside ``[since, until)``.

    Positions are replayed from the first fill, so a window cuts whole round trips: a
    trade counts where it closed. Fills and the equity curve are cut the same way,
    and the window's curve starts at 0 (the net before its first fill is taken off).
    """

    def inside(ts: int) -> bool:
        return (since is None or ts >= since) and (until is None or ts < until)

    trips = tuple(t for t in full.trips if inside(t.closed_ms))
    kept_fills = tuple(f for f in full.fills if inside(f.ts_ms))
    fees = sum((f.fee for f in kept_fills), ZERO)
    paid = sum((amount for ts, amount in funding if inside(ts)), ZERO)
    realised = sum((t.pnl for t in trips), ZERO)
    offset: Decimal | None = None
    previous = ZERO
    equity: list[tuple[int, Decimal]] = []
    for ts, value in full.equity:
        if inside(ts):
            if offset is None:
                offset = previous
            equity.append((ts, value - offset))
        previous = value
    return Report(
        trips=trips,
        fees=fees,
        realised=realised,
        equity=tuple(equity),
        fills=kept_fills,
        funding=paid,
    )
