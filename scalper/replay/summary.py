"""What a replay prints at its end, and the rules it assumes for an old recording.

Kept apart from the player: the summary is a plain value (``scalper replay`` renders it,
``scalper backtest`` reads its position and unrealised PnL, tests compare it), while the
player is the loop that produces the counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from scalper.core.model import Instrument

from .recording import RecordingHeader

__all__ = ["ReplaySummary", "assumed_instrument"]


def assumed_instrument(header: RecordingHeader) -> Instrument:
    """Trading rules for a recording made without instruments-info (``--tick-size``).

    Only the tick size is known; the rest is permissive (qty step 0.001, no minimum
    notional), and the summary says so: sizes may differ from the bot's.
    """
    step = Decimal("0.001")
    return Instrument(
        symbol=header.symbol,
        tick_size=header.tick_size,
        qty_step=step,
        min_qty=step,
        max_qty=Decimal(1_000_000),
        max_mkt_qty=Decimal(1_000_000),
        min_notional=Decimal(0),
    )


@attrs.frozen(kw_only=True)
class ReplaySummary:
    """What a replay saw and did; ``render()`` gives the printed lines."""

    symbol: str
    records: int
    frames: int
    file_errors: Mapping[str, int]
    parse_errors: Mapping[str, int]
    book_messages: int
    trade_messages: int
    other_symbol_frames: int
    resyncs: int
    disconnects: int
    reconnects: int
    entries_placed: int
    entries_filled: int
    exits_placed: int
    exits_filled: int
    realised_pnl: Decimal
    fees: Decimal
    unrealised_pnl: Decimal
    final_state: str
    position: str
    book_valid: bool
    book_invalid_reason: str | None
    duration_ms: int
    instrument_assumed: bool
    clock_offset_ms: int = 0

    @property
    def parse_error_total(self) -> int:
        """Frames skipped by the parser."""
        return sum(self.parse_errors.values())

    def render(self) -> list[str]:
        """The summary block, one string per line."""

        def counts(c: Mapping[str, int]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(c.items())) if c else "none"

        book = "valid" if self.book_valid else f"invalid ({self.book_invalid_reason})"
        lines = [
            f"replay summary for {self.symbol} ({self.duration_ms / 1000:.3f}s recorded; "
            f"engine clock = receive time {self.clock_offset_ms:+d} ms exchange offset)",
            f"  records: {self.records} ({self.frames} frames); unreadable lines: "
            f"{counts(self.file_errors)}",
            f"  frames: {self.book_messages} book, {self.trade_messages} trades, "
            f"{self.other_symbol_frames} other symbol; parse errors: {counts(self.parse_errors)}",
            f"  book resyncs: {self.resyncs}; disconnects: {self.disconnects}; "
            f"reconnects: {self.reconnects}; book at end: {book}",
            f"  entries: {self.entries_placed} placed, {self.entries_filled} filled; "
            f"exits: {self.exits_placed} placed, {self.exits_filled} filled",
            f"  PnL: realised {self.realised_pnl:.4f} before fees, fees {self.fees:.4f}, "
            f"net {self.realised_pnl - self.fees:.4f}; unrealised {self.unrealised_pnl:.4f} USDT",
            f"  final state: {self.final_state}; position: {self.position}",
        ]
        if self.instrument_assumed:
            lines.append(
                "  note: instrument rules were not recorded (tick size only): "
                "qty step 0.001 assumed, sizes may differ from the bot's"
            )
        return lines
