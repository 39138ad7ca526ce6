"""The report replays fills through one-way positions exactly, and draws a real PNG."""

from __future__ import annotations

import zlib
from decimal import Decimal
from pathlib import Path

from scalper.report import Fill, build_report, format_report, render_png


def _fill(ts: int, side: str, qty: str, price: str, fee: str = "0") -> Fill:
    return Fill(
        ts_ms=ts,
        symbol="SOLUSDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
    )


def test_long_and_short_round_trips_with_fees() -> None:
    report = build_report(
        [
            _fill(1, "Buy", "2", "100", "0.1"),
            _fill(2, "Sell", "2", "101", "0.1"),  # long +2
            _fill(3, "Sell", "1", "50"),
            _fill(4, "Buy", "1", "52"),  # short -2
        ]
    )
    assert [t.pnl for t in report.trips] == [Decimal("2"), Decimal("-2")]
    assert [t.side for t in report.trips] == ["Buy", "Sell"]
    assert report.realised == 0
    assert report.fees == Decimal("0.2")
    assert report.net == Decimal("-0.2")
    assert report.wins == 1
    assert [v for _, v in report.equity] == [
        Decimal("-0.1"),
        Decimal("1.8"),
        Decimal("1.8"),
        Decimal("-0.2"),
    ]


def test_averaging_in_partial_close_and_flip() -> None:
    report = build_report(
        [
            _fill(1, "Buy", "1", "100"),
            _fill(2, "Buy", "1", "110"),  # entry 105
            _fill(3, "Sell", "0.5", "115"),  # +5 on 0.5
            _fill(4, "Sell", "2.5", "100"),  # closes 1.5 at -5 each, opens short 1 at 100
            _fill(5, "Buy", "1", "90"),  # short closed +10
        ]
    )
    assert [(t.qty, t.entry, t.pnl) for t in report.trips] == [
        (Decimal("0.5"), Decimal("105"), Decimal("5.0")),
        (Decimal("1.5"), Decimal("105"), Decimal("-7.5")),
        (Decimal("1"), Decimal("100"), Decimal("10")),
    ]
    assert report.realised == Decimal("7.5")
    assert "round trips: 3" in format_report(report)


def test_png_is_a_valid_image_of_the_requested_size(tmp_path: Path) -> None:
    path = tmp_path / "equity.png"
    render_png([0.0, 1.5, -2.0, 3.0], str(path), width=50, height=20)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 50
    assert int.from_bytes(data[20:24], "big") == 20
    idat_len = int.from_bytes(data[33:37], "big")
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == 20 * (1 + 50 * 3)
    assert bytes((30, 90, 200)) in raw  # the line was drawn
