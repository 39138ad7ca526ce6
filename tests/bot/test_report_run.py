"""``scalper report`` on the journal of a real (short) bot run against the simulator:
its numbers are the exchange's (order history, fees, the wallet's realised PnL), in
every format, and the chart is a real PNG of the promised size."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from scalper.cli import main
from scalper.core.model import EngineState

from .conftest import LogCapture, bot_settings, running_bot, sim_exchange, wait_engine


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


async def test_report_of_a_bot_run_matches_the_exchange(
    tmp_path: Path, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = bot_settings(tmp_path)
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, _):
        # one whole round trip, then the stop (flatten_on_exit closes anything left)
        await wait_engine(bot, lambda e: e.state is EngineState.POSITION_OPEN, timeout=60)
        await wait_engine(bot, lambda e: e.state is EngineState.IDLE, timeout=30)
    state = sim.state()
    assert all(Decimal(p["size"]) == 0 for p in state["positions"])
    filled = sorted(
        (
            o
            for o in state["order_history"]
            if o["orderLinkId"].startswith("scalp-") and Decimal(o["cumExecQty"]) > 0
        ),
        key=lambda o: int(o["createdTime"]),
    )
    assert len(filled) >= 2
    exchange_fees = sum((Decimal(o["cumExecFee"]) for o in filled), Decimal(0))
    # the wallet's cumulative realised PnL is net of fees (the simulator's accounting)
    exchange_net = Decimal(state["wallet"]["coin"][0]["cumRealisedPnl"])
    journal = settings.journal.path

    assert main(["report", "--journal", journal, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fills"] == len(filled)
    assert Decimal(data["fees"]) == exchange_fees
    assert Decimal(data["net_pnl"]).quantize(Decimal("0.0001")) == exchange_net.quantize(
        Decimal("0.0001")
    )
    assert Decimal(data["gross_pnl"]) - Decimal(data["fees"]) == Decimal(data["net_pnl"])
    assert data["round_trips"] >= 1 and len(data["trades"]) == data["round_trips"]
    # every trade's prices are the exchange's average fill prices of its orders
    prices = {Decimal(o["avgPrice"]) for o in filled}
    for trade in data["trades"]:
        assert Decimal(trade["entry"]) in prices or len(filled) > 2
        assert Decimal(trade["exit"]) in prices
    assert sum(d["round_trips"] for d in data["days"]) == data["round_trips"]
    assert sum(s["round_trips"] for s in data["symbols"]) == data["round_trips"]

    assert main(["report", "--journal", journal, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["net_pnl"] for r in rows] == [t["net_pnl"] for t in data["trades"]]

    plot = tmp_path / "equity.png"
    assert main(["report", "--journal", journal, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert f"fills: {len(filled)}  round trips: {data['round_trips']}" in text
    assert f"net PnL: {Decimal(data['net_pnl']):.4f}" in text
    assert f"equity chart written to {plot}" in text
    width, height = _png_size(plot)
    assert width >= 1200 and height >= 600
    assert logs.errors() == []
