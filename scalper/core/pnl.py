"""One PnL computation for the status panel, ``scalper report`` and the daily-loss limit.

Why one module: the limit used to book price-only PnL while the report subtracted
fees, so the bot could believe it had lost less than it had. Everything that turns
fills or exchange rows into money lives here:

* ``price_pnl`` / ``fee_estimate`` / ``unrealised_net``: the arithmetic, shared.
* ``Ledger``: fills replayed one at a time through one-way positions (per symbol),
  as Bybit's one-way mode does; ``build_report`` is the ledger over a whole journal.
* ``DayBook``: the day's realised PnL net of fees from every source, for the limit:
  provisional results of the engine's own closes (replaced by the exchange's
  closed-PnL row of that order when it arrives), rows of orders not ours (exchange
  stop, liquidation, manual close) added, rows de-duplicated by order id.

Money is Decimal; the UTC day is ``now_ms // DAY_MS``, passed in (no clock here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal

import attrs

from .model import ClosedPnl, RiskState, Side

__all__ = [
    "DAY_MS",
    "BookedRow",
    "DayBook",
    "Fill",
    "Ledger",
    "Report",
    "RoundTrip",
    "build_report",
    "fee_estimate",
    "price_pnl",
    "unrealised_net",
    "utc_day",
]

#: one UTC day in milliseconds (epoch days start at 00:00 UTC: no leap seconds in epoch ms)
DAY_MS = 86_400_000


def utc_day(now_ms: int) -> int:
    """The UTC day number of an epoch-ms instant."""
    return now_ms // DAY_MS


def price_pnl(side: Side, entry: Decimal, exit_price: Decimal, qty: Decimal) -> Decimal:
    """PnL of closing ``qty`` of a ``side`` position opened at ``entry`` (fees excluded)."""
    return (exit_price - entry) * qty * side.sign


def fee_estimate(notional: Decimal, rate: Decimal) -> Decimal:
    """The fee of a trade of ``notional`` at ``rate`` (a taker fill when nothing better known)."""
    return abs(notional) * rate


def unrealised_net(
    side: Side, entry: Decimal, mark: Decimal, size: Decimal, taker_fee_rate: Decimal
) -> Decimal:
    """What closing the position at ``mark`` now would realise, net of the closing fee."""
    return price_pnl(side, entry, mark, size) - fee_estimate(mark * size, taker_fee_rate)


# ------------------------------------------------------------------ the fill ledger


ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class Fill:
    """One executed order as the journal recorded it."""

    ts_ms: int
    symbol: str
    side: str  # "Buy" / "Sell"
    qty: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)


@attrs.frozen(kw_only=True)
class RoundTrip:
    """A position opened and (partly) closed: the realised result of one close."""

    symbol: str
    side: str  # side of the position that was closed
    qty: Decimal
    entry: Decimal
    exit: Decimal
    pnl: Decimal  # gross: (exit - entry) x qty x direction
    closed_ms: int
    #: when the position (from flat) was opened
    opened_ms: int = 0
    #: its share of the entry fees plus the exit fee
    fees: Decimal = Decimal(0)

    @property
    def net(self) -> Decimal:
        """Gross PnL minus fees."""
        return self.pnl - self.fees

    @property
    def hold_s(self) -> float:
        """Seconds from the opening fill to this close."""
        return max(0, self.closed_ms - self.opened_ms) / 1000


@attrs.frozen(kw_only=True)
class Report:
    """Everything ``scalper report`` prints."""

    trips: tuple[RoundTrip, ...]
    fees: Decimal
    realised: Decimal
    equity: tuple[tuple[int, Decimal], ...]  # (ts_ms, net realised pnl) after each fill
    fills: tuple[Fill, ...] = ()
    funding: Decimal = Decimal(0)

    @property
    def net(self) -> Decimal:
        """Realised PnL minus fees, plus funding."""
        return self.realised - self.fees + self.funding

    @property
    def wins(self) -> int:
        """Round trips with a positive PnL after fees."""
        return sum(1 for t in self.trips if t.net > 0)

    @property
    def win_rate(self) -> float | None:
        """Wins / round trips, None without a round trip."""
        return self.wins / len(self.trips) if self.trips else None

    @property
    def max_drawdown(self) -> Decimal:
        """The largest fall of the net equity curve from a running peak (from 0)."""
        peak, worst = ZERO, ZERO
        for _, value in self.equity:
            peak = max(peak, value)
            worst = max(worst, peak - value)
        return worst

    @property
    def avg_hold_s(self) -> float | None:
        """Mean hold of the round trips (s), None without one."""
        return sum(t.hold_s for t in self.trips) / len(self.trips) if self.trips else None

    @property
    def open_fees(self) -> Decimal:
        """Fees of fills not (yet) in a round trip: entries of a position still open."""
        return self.fees - sum((t.fees for t in self.trips), ZERO)

    @property
    def fee_share(self) -> float | None:
        """Fees as a fraction of the gross PnL's size, None when the gross is 0."""
        return float(self.fees / abs(self.realised)) if self.realised else None


@attrs.define
class _Position:
    size: Decimal = Decimal(0)  # signed: + long, - short
    entry: Decimal = Decimal(0)
    opened_ms: int = 0
    #: entry fees not yet attributed to a round trip
    fees: Decimal = Decimal(0)


class Ledger:
    """Fills replayed one at a time through one-way positions (per symbol).

    Incremental, so the live bot can keep its PnL current at O(1) per fill;
    ``build_report`` is the same ledger run over a whole journal. ``history`` bounds
    what is kept of the fills, round trips and equity points (the newest ``history`` of
    each): a bot that runs for months keeps its totals and counts exact without keeping
    every fill in memory. None keeps everything (a report over a journal).
    """

    def __init__(self, history: int | None = None) -> None:
        if history is not None and history < 1:
            raise ValueError(f"history must be >= 1 or None, got {history}")
        self._positions: dict[str, _Position] = {}
        self._trips: deque[RoundTrip] = deque(maxlen=history)
        self._equity: deque[tuple[int, Decimal]] = deque(maxlen=history)
        self._fills: deque[Fill] = deque(maxlen=history)
        self.fees = Decimal(0)
        self.realised = Decimal(0)
        #: round trips closed so far (all of them, however many ``history`` keeps)
        self.trip_count = 0
        #: round trips with a positive PnL after fees (``Report.wins``, kept as they close)
        self.wins = 0

    @property
    def net(self) -> Decimal:
        """Realised PnL minus fees so far."""
        return self.realised - self.fees

    @property
    def trips(self) -> tuple[RoundTrip, ...]:
        """The round trips kept (all, or the newest ``history``), oldest first."""
        return tuple(self._trips)

    def add(self, fill: Fill) -> None:
        """Apply one fill: open, add to, reduce, close or flip the symbol's position."""
        pos = self._positions.setdefault(fill.symbol, _Position())
        self._fills.append(fill)
        signed = fill.qty if fill.side == "Buy" else -fill.qty
        self.fees += fill.fee
        if pos.size == 0 or (pos.size > 0) == (signed > 0):
            if pos.size == 0:
                pos.opened_ms = fill.ts_ms
            total = pos.size + signed
            pos.entry = (pos.entry * abs(pos.size) + fill.price * fill.qty) / abs(total)
            pos.size = total
            pos.fees += fill.fee
        else:
            closed = min(abs(signed), abs(pos.size))
            direction = 1 if pos.size > 0 else -1
            pnl = price_pnl(Side.BUY if direction > 0 else Side.SELL, pos.entry, fill.price, closed)
            entry_fees = pos.fees * closed / abs(pos.size)
            exit_fee = fill.fee * closed / fill.qty
            pos.fees -= entry_fees
            self.realised += pnl
            trip = RoundTrip(
                symbol=fill.symbol,
                side="Buy" if direction > 0 else "Sell",
                qty=closed,
                entry=pos.entry,
                exit=fill.price,
                pnl=pnl,
                closed_ms=fill.ts_ms,
                opened_ms=pos.opened_ms,
                fees=entry_fees + exit_fee,
            )
            self._trips.append(trip)
            self.trip_count += 1
            self.wins += trip.net > 0
            remainder = abs(signed) - closed
            if remainder > 0:  # flipped through zero: the rest opens the other way
                pos.size, pos.entry = -direction * remainder, fill.price
                pos.opened_ms, pos.fees = fill.ts_ms, fill.fee - exit_fee
            else:
                pos.size += signed
                if pos.size == 0:
                    pos.entry, pos.fees = Decimal(0), Decimal(0)
        self._equity.append((fill.ts_ms, self.net))

    def report(self, funding: Decimal = Decimal(0)) -> Report:
        """Everything kept so far, as a ``Report`` (all of it when ``history`` is None)."""
        return Report(
            trips=tuple(self._trips),
            fees=self.fees,
            realised=self.realised,
            equity=tuple(self._equity),
            fills=tuple(self._fills),
            funding=funding,
        )


def build_report(fills: Iterable[Fill], funding: Decimal = Decimal(0)) -> Report:
    """Replay fills through one-way positions (per symbol) and collect realised PnL."""
    ledger = Ledger()
    for fill in fills:
        ledger.add(fill)
    return ledger.report(funding)


# ------------------------------------------------------------------ the day's book


@attrs.frozen(kw_only=True)
class BookedRow:
    """What ``DayBook.book_rows`` did with one closed-PnL row."""

    row: ClosedPnl
    #: "replaced": the truth for one of our provisional closes; "ours": a row of our
    #: order not booked yet (a close first seen by a position read, a late fill);
    #: "foreign": an order not ours (exchange stop, liquidation, manual close)
    kind: str
    #: how much the day's realised total moved
    delta: Decimal


class DayBook:
    """The UTC day's realised PnL, net of fees, from every source (pure: days passed in)."""

    def __init__(self) -> None:
        self.day: int | None = None
        self.realised_net = Decimal(0)
        #: order ids whose exchange row was counted (or whose provisional result was
        #: persisted: after a restart its row is then not counted twice)
        self._booked: set[str] = set()
        #: our closes counted provisionally, by order id, until their row arrives
        self._provisional: dict[str, Decimal] = {}
        #: bumped by every change, so a reader (the engine's journaling of its risk
        #: state) compares one int per event instead of rebuilding the state
        self.version = 0

    @property
    def booked_order_ids(self) -> tuple[str, ...]:
        """Order ids already counted: the de-duplication list to persist (sorted)."""
        return tuple(sorted(self._booked | self._provisional.keys()))

    def roll(self, day: int) -> bool:
        """Move to ``day``; True when that started a new day (the realised total reset)."""
        if self.day == day:
            return False
        first = self.day is None
        self.version += 1
        self.day = day
        self.realised_net = Decimal(0)
        self._booked.clear()
        self._provisional.clear()
        return not first

    def restore(self, state: RiskState) -> None:
        """Take over a journaled state of the same day (the caller checks the day)."""
        self.version += 1
        self.day = state.day
        self.realised_net = state.realised_net
        self._booked = set(state.booked_order_ids)
        self._provisional.clear()

    def add(self, amount: Decimal) -> None:
        """Book a result that no exchange row will ever replace."""
        self.version += 1
        self.realised_net += amount

    def book_provisional(self, order_id: str, amount: Decimal) -> None:
        """Book one of our closes now; its exchange row (same order id) replaces it later.

        Without an order id nothing can match the row: it is booked for good.
        """
        self.version += 1
        self.realised_net += amount
        if order_id and order_id not in self._booked:
            self._provisional[order_id] = self._provisional.get(order_id, Decimal(0)) + amount

    def book_rows(
        self, rows: Iterable[ClosedPnl], day: int, ours: set[str] | frozenset[str]
    ) -> list[BookedRow]:
        """Count today's rows not counted yet; ``ours`` are the order ids of our orders."""
        out: list[BookedRow] = []
        for row in rows:
            if utc_day(row.updated_ms) != day or row.order_id in self._booked:
                continue
            if not row.order_id:
                continue  # a row without an order id cannot be de-duplicated: skip it
            self._booked.add(row.order_id)
            provisional = self._provisional.pop(row.order_id, None)
            if provisional is not None:
                kind, delta = "replaced", row.closed_pnl - provisional
            else:
                kind = "ours" if row.order_id in ours else "foreign"
                delta = row.closed_pnl
            self.version += 1
            self.realised_net += delta
            out.append(BookedRow(row=row, kind=kind, delta=delta))
        return out
