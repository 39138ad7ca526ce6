"""Scanner: filtering, scoring and the 1.2x switching rule."""

from __future__ import annotations

import pytest

from scalper.core.model import TickerStat
from scalper.core.scanner import (
    ScannerConfig,
    choose,
    is_stablecoin_pair,
    rank,
    score,
)

M = 1_000_000.0


def t(symbol: str, turnover: float = 50 * M, pcnt: float = 0.05) -> TickerStat:
    return TickerStat(symbol=symbol, turnover24h=turnover, price24h_pcnt=pcnt, last_price=1.0)


def test_score_is_turnover_times_abs_change() -> None:
    assert score(t("SOLUSDT", 20 * M, -0.1)) == pytest.approx(2 * M)


@pytest.mark.parametrize(
    "symbol",
    [
        "BTCUSDT",
        "ETHUSDT",
        "USDCUSDT",
        "FDUSDUSDT",
        "TUSDUSDT",
        "DAIUSDT",
        "USDEUSDT",
        "SOLUSDC",
        "SOLPERP",
        "BTCUSDT-26DEC25",
        "USDT",
    ],
)
def test_filtered_symbols_are_never_chosen(symbol: str) -> None:
    assert rank([t(symbol, 900 * M, 0.5)]) == []
    assert choose([t(symbol, 900 * M, 0.5)], None) is None


def test_turnover_floor_is_inclusive() -> None:
    assert rank([t("AUSDT", 10 * M), t("BUSDT", 10 * M - 1)]) == [("AUSDT", 10 * M * 0.05)]


def test_non_finite_data_is_dropped() -> None:
    assert rank([t("AUSDT", float("nan")), t("BUSDT", 20 * M, float("inf"))]) == []


def test_stablecoin_detection() -> None:
    assert is_stablecoin_pair("USDCUSDT")
    assert is_stablecoin_pair("USDEUSDT")
    assert not is_stablecoin_pair("SOLUSDT")


def test_rank_orders_by_score_then_symbol() -> None:
    tickers = [t("CUSDT", 20 * M, 0.1), t("BUSDT", 20 * M, -0.1), t("AUSDT", 40 * M, 0.01)]
    assert [s for s, _ in rank(tickers)] == ["BUSDT", "CUSDT", "AUSDT"]
    # listing order does not matter
    assert rank(list(reversed(tickers))) == rank(tickers)


def test_no_current_picks_the_best() -> None:
    assert choose([t("AUSDT", pcnt=0.01), t("BUSDT", pcnt=0.02)], None) == "BUSDT"


def test_no_eligible_ticker_means_stay() -> None:
    assert choose([], "AUSDT") is None


def test_best_is_current_means_stay() -> None:
    assert choose([t("AUSDT", pcnt=0.05), t("BUSDT", pcnt=0.01)], "AUSDT") is None


@pytest.mark.parametrize(
    ("best_pcnt", "expected"),
    [(0.12, None), (0.1201, "BUSDT"), (0.119, None)],
)
def test_switch_needs_more_than_ratio_times_current(best_pcnt: float, expected: str | None) -> None:
    tickers = [t("AUSDT", pcnt=0.1), t("BUSDT", pcnt=best_pcnt)]
    assert choose(tickers, "AUSDT", 1.2) == expected


@pytest.mark.parametrize(
    "current_row",
    [None, t("AUSDT", 5 * M, 0.5), t("AUSDT", 50 * M, 0.0)],
    ids=["left-the-list", "filtered-out", "listed-score-0"],
)
def test_current_with_no_live_score_is_replaced(current_row: TickerStat | None) -> None:
    tickers = [t("BUSDT", pcnt=0.001)] + ([current_row] if current_row else [])
    assert choose(tickers, "AUSDT") == "BUSDT"


def test_last_row_of_a_symbol_wins() -> None:
    assert rank([t("AUSDT", pcnt=0.5), t("AUSDT", 1 * M, 0.5)]) == []


def test_config_object_applies_its_settings() -> None:
    cfg = ScannerConfig(min_turnover=1 * M, switch_ratio=2.0, exclude=["SOLUSDT"])
    tickers = [t("SOLUSDT", 900 * M), t("AUSDT", 2 * M, 0.1), t("BUSDT", 2 * M, 0.15)]
    assert cfg.exclude == ("SOLUSDT",)
    assert cfg.choose(tickers, None) == "BUSDT"
    assert cfg.choose(tickers, "AUSDT") is None  # 0.3M is not > 2 x 0.2M
    assert ScannerConfig().choose([t("BTCUSDT", 900 * M)], None) is None
