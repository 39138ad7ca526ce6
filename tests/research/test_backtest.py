"""``scalper backtest`` and ``scalper sweep`` on the shipped sample (tests/data).

The sample is ten minutes of the simulator's market in Bybit's archive formats, imported
(see ``test_import_bybit``); these tests check what a researcher relies on: the counts,
fills with fees, the same digest every time, and a sweep whose rows do not depend on who
ran them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from scalper.cli import main
from scalper.research.backtest import load_spec, run_backtest
from scalper.research.sweep import sweep

SAMPLE = str(Path(__file__).parents[1] / "data" / "SOLUSDT-sample.jsonl.gz")


def _cli(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        code = main(argv)
    finally:
        sys.stdout = old
    return code, buf.getvalue()


def test_the_sample_backtests_to_round_trips_with_fees_and_the_same_digest_twice() -> None:
    spec = load_spec([SAMPLE], [])
    first, second = run_backtest(spec), run_backtest(spec)
    assert (first.book_frames, first.trades, first.parse_errors, first.resyncs) == (
        6000, 5346, 0, 0
    )  # fmt: skip
    assert first.round_trips >= 3 and first.fills >= 2 * first.round_trips
    assert 0 < first.maker_fills < first.fills  # PostOnly and market entries both happen
    assert first.fees > 0 and first.net_pnl == first.gross_pnl - first.fees
    assert first.max_drawdown >= 0
    assert first.digest == second.digest and first.to_json().keys() == second.to_json().keys()
    assert {k: v for k, v in first.to_json().items() if k not in ("seconds", "frames_per_s")} == {
        k: v for k, v in second.to_json().items() if k not in ("seconds", "frames_per_s")
    }


def test_fees_and_latency_are_settings_that_change_the_result() -> None:
    base = run_backtest(load_spec([SAMPLE], []))
    no_fees = run_backtest(load_spec([SAMPLE], ["backtest.maker_fee=0", "backtest.taker_fee=0"]))
    assert no_fees.fees == 0 and no_fees.net_pnl == base.gross_pnl
    assert no_fees.digest != base.digest  # the fee is part of every fill line
    late = run_backtest(load_spec([SAMPLE], [], latency_ms=200))
    assert late.digest != base.digest


def test_cli_json_has_the_documented_fields(tmp_path: Path) -> None:
    plot = tmp_path / "equity.png"
    code, out = _cli(["backtest", SAMPLE, "--format", "json", "--plot", str(plot)])
    assert code == 0
    data = orjson.loads(out)
    for key in ("book_frames", "trades", "parse_errors", "resyncs", "orders", "fills", "fees",
                "gross_pnl", "net_pnl", "max_drawdown", "digest"):  # fmt: skip
        assert key in data
    assert data["fills"] > 0 and data["digest"] == run_backtest(load_spec([SAMPLE], [])).digest
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_cli_text_prints_the_report_and_the_speed() -> None:
    code, out = _cli(["backtest", SAMPLE, "--set", "strategy.take_profit_pct=1.5"])
    assert code == 0
    assert "round trips:" in out and "net PnL:" in out and "frames/s" in out


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--set", "backtest.fee=1"], "error: backtest.fee: unknown key"),
        (["--set", "backtest.latency_ms=-1"], "error: backtest.latency_ms: must be"),
        (["--set", "strategy.window=0"], "error: strategy.window:"),
        (["--set", "nonsense"], "error: --set: expected section.key=value"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", SAMPLE, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1


GRID = ["strategy.take_profit_pct=0.5,1.0,1.5"]


def _stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_sweep_rows_are_ranked_by_net_pnl_and_do_not_depend_on_the_workers() -> None:
    one = sweep([SAMPLE], GRID, workers=1)
    assert len(one) == 3
    assert sorted(r["params"]["strategy.take_profit_pct"] for r in one) == ["0.5", "1.0", "1.5"]
    nets = [r["net_pnl"] for r in one]
    assert nets == sorted(nets, reverse=True) and [r["rank"] for r in one] == [1, 2, 3]
    assert len({r["digest"] for r in one}) == 3
    solo = run_backtest(load_spec([SAMPLE], ["strategy.take_profit_pct=1.0"]))
    row = next(r for r in one if r["params"]["strategy.take_profit_pct"] == "1.0")
    assert (row["digest"], row["fills"]) == (solo.digest, solo.fills)
    assert _stable(sweep([SAMPLE], GRID, workers=2)) == _stable(one)


def test_sweep_cli_json_and_a_bad_grid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(["sweep", SAMPLE, "--grid", "backtest.latency_ms=0,100", "--workers", "1",
                      "--format", "json"])  # fmt: skip
    assert code == 0
    rows = orjson.loads(out)["rows"]
    assert [r["rank"] for r in rows] == [1, 2]
    assert main(["sweep", SAMPLE, "--grid", "strategy.window=0,10"]) == 2
    assert capsys.readouterr().err.startswith("error: strategy.window:")


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster_matches_the_local_run() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        rows = sweep([SAMPLE], GRID, dask=cluster.scheduler_address)
    assert _stable(rows) == _stable(sweep([SAMPLE], GRID, workers=1))
