"""The report replays fills through one-way positions exactly; totals, tables, formats,
date windows and the chart follow from them."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from scalper.app.journal import Journal, JournalRecord, run_journal
from scalper.cli import main
from scalper.report import (
    Fill,
    build_report,
    by_day,
    by_symbol,
    format_csv,
    format_json,
    format_report,
    parse_when,
    render_plot,
)

DAY1 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
DAY2 = DAY1 + 86_400_000


def _fill(ts: int, side: str, qty: str, price: str, fee: str = "0", sym: str = "SOLUSDT") -> Fill:
    return Fill(
        ts_ms=ts,
        symbol=sym,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_long_and_short_round_trips_with_fees() -> None:
    report = build_report(
        [
            _fill(1000, "Buy", "2", "100", "0.1"),
            _fill(5000, "Sell", "2", "101", "0.1"),  # long +2
            _fill(6000, "Sell", "1", "50"),
            _fill(9000, "Buy", "1", "52"),  # short -2
        ]
    )
    assert [t.pnl for t in report.trips] == [Decimal("2"), Decimal("-2")]
    assert [t.fees for t in report.trips] == [Decimal("0.2"), Decimal("0")]
    assert [t.net for t in report.trips] == [Decimal("1.8"), Decimal("-2")]
    assert [t.hold_s for t in report.trips] == [4.0, 3.0]
    assert [t.side for t in report.trips] == ["Buy", "Sell"]
    assert report.realised == 0
    assert report.fees == Decimal("0.2")
    assert report.net == Decimal("-0.2")
    assert report.wins == 1 and report.win_rate == 0.5
    assert [v for _, v in report.equity] == [
        Decimal("-0.1"),
        Decimal("1.8"),
        Decimal("1.8"),
        Decimal("-0.2"),
    ]
    assert report.max_drawdown == Decimal("2.0")  # from the peak 1.8 to -0.2
    assert report.avg_hold_s == 3.5
    assert report.fee_share is None  # gross 0


def test_averaging_in_partial_close_and_flip_share_the_fees() -> None:
    report = build_report(
        [
            _fill(1, "Buy", "1", "100", "1"),
            _fill(2, "Buy", "1", "110", "1"),  # entry 105, entry fees 2
            _fill(3, "Sell", "0.5", "115", "0.5"),  # +5 on 0.5, fees 0.5 + 0.5
            _fill(4, "Sell", "2.5", "100", "2.5"),  # closes 1.5 at -5 each, opens short 1
            _fill(5, "Buy", "1", "90", "1"),  # short closed +10
        ]
    )
    assert [(t.qty, t.entry, t.pnl, t.fees) for t in report.trips] == [
        (Decimal("0.5"), Decimal("105"), Decimal("5.0"), Decimal("1.0")),
        (Decimal("1.5"), Decimal("105"), Decimal("-7.5"), Decimal("3.0")),
        (Decimal("1"), Decimal("100"), Decimal("10"), Decimal("2.0")),
    ]
    assert report.realised == Decimal("7.5")
    # every fee lands in exactly one round trip
    assert sum(t.fees for t in report.trips) == report.fees == Decimal("6")
    assert report.trips[2].opened_ms == 4  # the flip opened the short
    assert report.open_fees == 0


def test_fees_of_a_position_still_open_are_named() -> None:
    report = build_report([*_two_days(), _fill(DAY2 + 40_000, "Buy", "1", "100", "0.07")])
    assert report.open_fees == Decimal("0.07")
    assert "fees: 0.5700 (0.0700 on a position still open)" in format_report(report)
    assert json.loads(format_json(report))["open_position_fees"] == "0.07"


def _two_days() -> list[Fill]:
    return [
        _fill(DAY1 + 1000, "Buy", "1", "100", "0.1"),
        _fill(DAY1 + 61_000, "Sell", "1", "103", "0.1"),  # +3, net 2.8
        _fill(DAY1 + 70_000, "Sell", "10", "2", "0.05", sym="XRPUSDT"),
        _fill(DAY1 + 90_000, "Buy", "10", "2.1", "0.05", sym="XRPUSDT"),  # -1, net -1.1
        _fill(DAY2 + 1000, "Buy", "1", "100", "0.1"),
        _fill(DAY2 + 31_000, "Sell", "1", "99", "0.1"),  # -1, net -1.2
    ]


def test_tables_per_day_and_per_symbol() -> None:
    report = build_report(_two_days())
    days = [(g.key, g.trips, g.wins, g.gross, g.fees, g.net) for g in by_day(report)]
    assert days == [
        ("2025-12-01", 2, 1, Decimal("2"), Decimal("0.3"), Decimal("1.7")),
        ("2025-12-02", 1, 0, Decimal("-1"), Decimal("0.2"), Decimal("-1.2")),
    ]
    symbols = [(g.key, g.trips, g.net) for g in by_symbol(report)]
    assert symbols == [("SOLUSDT", 2, Decimal("1.6")), ("XRPUSDT", 1, Decimal("-1.1"))]
    text = format_report(report)
    assert "fills: 6  round trips: 3  wins: 1  win rate: 33.3%" in text
    assert "gross PnL: 1.0000  fees: 0.5000  net PnL: 0.5000" in text
    assert "average hold: 36.7 s" in text  # (60 + 20 + 30) / 3
    assert "fees / |gross|: 50.0%" in text
    assert "2025-12-02        1    0.0%      -1.0000       0.2000      -1.2000" in text


def test_json_has_every_key_and_exact_money() -> None:
    report = build_report(_two_days())
    data = json.loads(format_json(report))
    assert {
        "fills",
        "round_trips",
        "fees",
        "gross_pnl",
        "net_pnl",
        "max_drawdown",
        "win_rate",
        "days",
        "symbols",
        "trades",
    } <= set(data)
    assert (data["fills"], data["round_trips"]) == (6, 3)
    assert Decimal(data["net_pnl"]) == Decimal("0.5")
    assert Decimal(data["fees"]) == Decimal("0.5")
    # equity: -0.1, 2.8, 2.75, 1.7, 1.6, 0.5 -> drawdown 2.8 - 0.5
    assert Decimal(data["max_drawdown"]) == Decimal("2.3")
    assert [d["day"] for d in data["days"]] == ["2025-12-01", "2025-12-02"]
    assert data["trades"][1]["symbol"] == "XRPUSDT" and data["trades"][1]["side"] == "Sell"
    assert data["trades"][0]["opened"] == "2025-12-01T00:00:01.000+00:00"


def test_csv_is_the_trades() -> None:
    rows = list(csv.DictReader(io.StringIO(format_csv(build_report(_two_days())))))
    assert [(r["symbol"], r["net_pnl"]) for r in rows] == [
        ("SOLUSDT", "2.8"),
        ("XRPUSDT", "-1.10"),
        ("SOLUSDT", "-1.2"),
    ]
    assert rows[0]["hold_s"] == "60.0"


@pytest.mark.parametrize(
    ("flag", "value", "end", "expected"),
    [
        ("--since", "2025-12-01", False, DAY1),
        ("--until", "2025-12-01", True, DAY2),  # a date's end: its whole day included
        ("--since", "2025-12-01T00:00:01", False, DAY1 + 1000),
        ("--since", "2025-12-01T01:00:00+01:00", False, DAY1),
        ("--since", "2025-12-01T00:00Z", False, DAY1),
        ("--since", None, False, None),
    ],
)
def test_dates(flag: str, value: str | None, end: bool, expected: int | None) -> None:
    assert parse_when(flag, value, end=end) == expected


async def _write_journal(path: Path, fills: list[Fill]) -> None:
    send, receive = trio.open_memory_channel[JournalRecord](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_journal, str(path), receive)
        for f in fills:
            journal = Journal(send.clone(), clock_ms=lambda ts=f.ts_ms: ts)
            await journal.record(
                "fill", symbol=f.symbol, side=f.side, qty=f.qty, price=f.price, fee=f.fee
            )
            await journal.aclose()
        await send.aclose()


async def test_cli_reads_the_journal_of_the_settings_and_cuts_a_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "data" / "journal.sqlite3"
    await _write_journal(journal, _two_days())
    config = tmp_path / "local.toml"
    # a live config without keys: a report never connects, so it needs none
    config.write_text(f'[exchange]\nmode = "live"\n[journal]\npath = "{journal}"\n')
    assert main(["report", "--config", str(config), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["round_trips"] == 3
    # found through [data] dir too, exactly like run writes it
    config.write_text(f'[data]\ndir = "{journal.parent}"\n')
    args = ["report", "--config", str(config), "--format", "json", "--since", "2025-12-02"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["round_trips"], data["fills"]) == (1, 2)
    assert Decimal(data["net_pnl"]) == Decimal("-1.2")
    assert Decimal(data["max_drawdown"]) == Decimal("1.2")  # the window starts at 0
    assert main(["report", "--journal", str(journal), "--until", "2025-12-01"]) == 0
    assert "round trips: 2" in capsys.readouterr().out


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sqlite3"
    assert main(["report", "--journal", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: journal.path: no journal at {missing}\n"
    assert main(["report", "--journal", str(missing), "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --since: expected YYYY-MM-DD") and err.count("\n") == 1


def test_plot_is_a_png_of_at_least_1200x600(tmp_path: Path) -> None:
    path = tmp_path / "equity.png"
    render_plot(build_report(_two_days()), str(path))
    width, height = png_size(path)
    assert width >= 1200 and height >= 600
    assert path.stat().st_size > 20_000  # axes, labels, markers: not an empty canvas


def test_plot_of_an_empty_journal_still_draws(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    render_plot(build_report([]), str(path))
    assert png_size(path) == (1400, 700)
