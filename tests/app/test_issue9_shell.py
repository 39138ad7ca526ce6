"""Issue 9, the shell around the engine: the new commands reach their executors, the
risk state is journaled and restored, reconcile covers every position, closed-PnL rows
are read, and the hedge-mode refusal and the stop line are what an operator reads.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from scalper.app.account import HedgeModeError, refuse_hedge_mode
from scalper.app.journal import Journal, JournalFailed, JournalRecord, read_records, run_journal
from scalper.app.main import stop_line
from scalper.app.reconcile import DAY_MS, LeftoverCloser, day_start_ms, run_reconcile
from scalper.app.risk_state import lift_halt, read_risk_state
from scalper.bybit.errors import NetworkError
from scalper.core.model import (
    ClosedPnl,
    ClosedPnlRows,
    Event,
    Instrument,
    OpenOrders,
    OrderIntent,
    OrderType,
    PersistRiskState,
    PlaceOrder,
    PositionSnapshot,
    ProtectPosition,
    RequestClosedPnl,
    RiskState,
    Side,
    Tick,
    TimeInForce,
    TriggerBy,
)

from .fakes import FakeApi
from .test_strategy_runner import Harness, ScriptedEngine

D = Decimal
NOW_MS = 1_764_590_000_000  # 2025-12-01 11:53 UTC
TODAY = NOW_MS // DAY_MS


def _snap(
    symbol: str, side: Side | None = Side.BUY, size: str = "3", idx: int = 0
) -> PositionSnapshot:
    return PositionSnapshot(
        symbol=symbol,
        side=side if D(size) else None,
        size=D(size),
        avg_price=D(100) if D(size) else D(0),
        position_idx=idx,
    )


def _flat(symbol: str) -> PositionSnapshot:
    return PositionSnapshot(symbol=symbol, side=None, size=D(0))


def _instrument(symbol: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        tick_size=D("0.01"),
        qty_step=D("0.1"),
        min_qty=D("0.1"),
        max_qty=D(1000),
        max_mkt_qty=D(500),
        min_notional=D(5),
    )


# ---------------------------------------------------------------- runner routing


async def test_new_commands_reach_execution_reconcile_and_the_journal() -> None:
    protect = ProtectPosition(
        symbol="SOLUSDT", stop_loss=D("95.5"), trigger_by=TriggerBy.MARK_PRICE
    )
    state = RiskState(
        day=TODAY,
        realised_net=D("-12.5"),
        booked_order_ids=("o-1", "o-2"),
        halted=True,
        halt_reason="daily loss 12.5 reached limit 10",
    )
    entry = OrderIntent(
        symbol="XRPUSDT",
        side=Side.SELL,
        order_type=OrderType.MARKET,
        qty=D(10),
        time_in_force=TimeInForce.IOC,
        order_link_id="scalp-t-e1",
    )
    engine = ScriptedEngine(
        {
            Tick: [
                protect,
                RequestClosedPnl(symbol=None),
                PersistRiskState(state=state),
                PlaceOrder(intent=entry),
            ]
        }
    )
    h = Harness(engine)
    await h.runner.feed(Tick())
    assert h.drain(h.orders) == [protect, PlaceOrder(intent=entry)]
    assert h.drain(h.requests) == [RequestClosedPnl(symbol=None)]
    records = [r for r in h.drain(h.journal) if r.kind == "risk_state"]
    assert [dict(r.data) for r in records] == [
        {
            "day": TODAY,
            "realised_net": D("-12.5"),
            "booked_order_ids": ("o-1", "o-2"),
            "halted": True,
            "halt_reason": "daily loss 12.5 reached limit 10",
        }
    ]
    assert h.runner.traded == {"XRPUSDT"}  # reconcile keeps watching it


# ---------------------------------------------------------------- risk state


async def _journal_to(path: Path, records: list[tuple[str, dict[str, Any]]]) -> None:
    send, receive = trio.open_memory_channel[JournalRecord](100)
    journal = Journal(send, clock_ms=lambda: NOW_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_journal, str(path), receive)
        for kind, data in records:
            await journal.record(kind, **data)
        await journal.aclose()


def _state_data(realised: str, halted: bool, reason: str | None = None) -> dict[str, Any]:
    return {
        "day": TODAY,
        "realised_net": D(realised),
        "booked_order_ids": ("o-1",),
        "halted": halted,
        "halt_reason": reason,
    }


async def test_the_newest_risk_state_is_restored_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    assert read_risk_state(str(path)) is None  # first start: no journal yet
    await _journal_to(
        path,
        [
            ("risk_state", _state_data("-3", False)),
            ("transition", {"before": "Idle", "after": "Halted"}),
            ("risk_state", _state_data("-11", True, "daily loss 11 reached limit 10")),
        ],
    )
    assert read_risk_state(str(path)) == RiskState(
        day=TODAY,
        realised_net=D(-11),
        booked_order_ids=("o-1",),
        halted=True,
        halt_reason="daily loss 11 reached limit 10",
    )


async def test_reset_halt_journals_who_and_when_and_restarts_the_day_at_zero(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite3"
    await _journal_to(path, [("risk_state", _state_data("-11", True, "daily loss"))])
    halted = read_risk_state(str(path))
    send, receive = trio.open_memory_channel[JournalRecord](100)
    journal = Journal(send, clock_ms=lambda: NOW_MS)
    lifted: RiskState | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(run_journal, str(path), receive)
        lifted = await lift_halt(journal, halted, NOW_MS)
        await journal.aclose()
    assert lifted == RiskState(
        day=TODAY, realised_net=D(0), booked_order_ids=("o-1",), halted=False, halt_reason=None
    )
    reset = list(read_records(str(path), ("halt_reset",)))
    assert len(reset) == 1
    data = reset[0].data
    assert data["user"] and data["host"]
    assert data["utc"] == "2025-12-01T11:53:20+00:00"
    assert data["was_halted"] is True
    # the next start without --reset-halt begins from the lifted state, not the old latch
    assert read_risk_state(str(path)) == lifted


# ---------------------------------------------------------------- reconcile


async def _reconcile_round(
    api: FakeApi,
    *,
    current: str | None,
    traded: set[str],
    leftovers: LeftoverCloser | None = None,
    requests: list[object] = (),  # type: ignore[assignment]
    run_for: float = 0.5,
    interval_s: float = 60.0,
) -> list[Event]:
    events: list[Event] = []

    async def report(event: Event) -> None:
        events.append(event)

    send, receive = trio.open_memory_channel[Any](16)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda **kw: run_reconcile(
                api,
                receive,
                report,
                interval_s,
                current=lambda: current,
                traded=lambda: traded,
                leftovers=leftovers,
                clock_ms=lambda: NOW_MS,
                **kw,
            )
        )
        for request in requests or ["SOLUSDT"]:
            send.send_nowait(request)
        await trio.sleep(run_for)
        nursery.cancel_scope.cancel()
    return events


async def test_reconcile_reads_all_positions_once_and_reports_current_and_traded_symbols(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.positions = {"XRPUSDT": _snap("XRPUSDT", Side.SELL, "10"), "BTCUSDT": _snap("BTCUSDT")}
    events = await _reconcile_round(
        api, current="SOLUSDT", traded={"SOLUSDT", "XRPUSDT", "DOGEUSDT"}
    )
    assert api.open_positions_calls == 1  # one read covers every symbol
    positions = [e for e in events if isinstance(e, PositionSnapshot)]
    # the current symbol flat (not listed), the traded ones as listed or flat; the
    # position on a symbol this session never traded is not the engine's business
    assert {p.symbol: p for p in positions} == {
        "SOLUSDT": _flat("SOLUSDT"),
        "XRPUSDT": api.positions["XRPUSDT"],
        "DOGEUSDT": _flat("DOGEUSDT"),
    }
    orders = [e for e in events if isinstance(e, OpenOrders)]
    assert {o.symbol for o in orders} == {"SOLUSDT", "XRPUSDT", "DOGEUSDT"}


async def test_a_leftover_on_a_symbol_traded_this_session_is_closed_reduce_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.positions = {
        "XRPUSDT": _snap("XRPUSDT", Side.SELL, "10.37"),  # left behind by a late fill
        "BTCUSDT": _snap("BTCUSDT"),  # never traded by this session: a human's
    }
    closer = LeftoverCloser(api, {"XRPUSDT": _instrument("XRPUSDT")}, "scalp", "sess1")
    await _reconcile_round(
        api, current="SOLUSDT", traded={"SOLUSDT", "XRPUSDT"}, leftovers=closer, run_for=2.0
    )
    assert [
        (i.symbol, i.side, i.qty, i.order_type, i.reduce_only, i.order_link_id) for i in api.placed
    ] == [("XRPUSDT", Side.BUY, D("10.3"), OrderType.MARKET, True, "scalp-sess1-l1")]


async def test_the_current_symbols_position_is_the_engines_not_a_leftover(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    api.positions = {"SOLUSDT": _snap("SOLUSDT")}
    closer = LeftoverCloser(api, {"SOLUSDT": _instrument("SOLUSDT")}, "scalp", "sess1")
    events = await _reconcile_round(
        api, current="SOLUSDT", traded={"SOLUSDT"}, leftovers=closer, run_for=2.0
    )
    assert api.placed == []
    assert api.positions["SOLUSDT"] in events


async def test_closed_pnl_of_the_utc_day_is_read_every_interval_and_on_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    row = ClosedPnl(
        symbol="SOLUSDT",
        order_id="o-9",
        side=Side.SELL,
        qty=D(3),
        closed_size=D(3),
        avg_entry_price=D(100),
        avg_exit_price=D(97),
        closed_pnl=D("-9.33"),
        exec_type="Trade",
        created_ms=NOW_MS - 5000,
        updated_ms=NOW_MS - 5000,
    )
    api.closed_rows = [row]
    start = trio.current_time()
    events = await _reconcile_round(
        api,
        current="SOLUSDT",
        traded=set(),
        requests=[RequestClosedPnl(symbol=None)],
        run_for=125.0,
    )
    assert [round(t - start) for t, _, _ in api.closed_pnl_calls] == [0, 60, 120]
    assert {s for _, s, _ in api.closed_pnl_calls} == {day_start_ms(NOW_MS)}
    assert day_start_ms(NOW_MS) % DAY_MS == 0 and NOW_MS - day_start_ms(NOW_MS) < DAY_MS
    assert [e for e in events if isinstance(e, ClosedPnlRows)] == [ClosedPnlRows(rows=(row,))] * 3


async def test_a_failed_closed_pnl_read_is_retried_soon(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = FakeApi()
    calls = 0
    real = api.closed_pnl

    async def flaky(**kw: Any) -> list[ClosedPnl]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise NetworkError("reset")
        return await real(**kw)

    api.closed_pnl = flaky  # type: ignore[method-assign]
    await _reconcile_round(
        api, current=None, traded=set(), requests=[RequestClosedPnl(symbol=None)], run_for=5.0
    )
    assert calls == 2


# ---------------------------------------------------------------- hedge mode, stop line


async def test_hedge_mode_is_refused_before_anything_is_placed() -> None:
    api = FakeApi()
    api.positions = {"SOLUSDT": _snap("SOLUSDT", idx=1)}
    with pytest.raises(HedgeModeError, match=r"hedge mode.*SOLUSDT"):
        await refuse_hedge_mode(api, {"SOLUSDT": _instrument("SOLUSDT")})  # type: ignore[arg-type]

    # a flat hedge-mode account: Bybit lists both sides' rows, size 0, positionIdx 1/2
    api = FakeApi()
    api.positions = {"SOLUSDT": _snap("SOLUSDT", size="0", idx=2)}
    with pytest.raises(HedgeModeError):
        await refuse_hedge_mode(api, {"SOLUSDT": _instrument("SOLUSDT")})  # type: ignore[arg-type]

    api = FakeApi()
    api.positions = {"SOLUSDT": _snap("SOLUSDT")}
    await refuse_hedge_mode(api, {"SOLUSDT": _instrument("SOLUSDT")})  # type: ignore[arg-type]


def test_stop_line_names_the_cause_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from loguru import logger

    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        try:
            raise JournalFailed("journal writer failed: OSError: [Errno 28] No space left")
        except JournalFailed as exc:
            try:
                raise exc from OSError(28, "No space left")
            except JournalFailed as chained:
                root = chained
        group = ExceptionGroup(
            "tree",
            [
                ExceptionGroup("inner", [JournalFailed("journal writer is gone; order record")]),
                root,
            ],
        )
        assert stop_line(group) == 1
        assert lines == [
            "scalper stopped: JournalFailed: journal writer failed: "
            "OSError: [Errno 28] No space left"
        ]
        lines.clear()
        assert stop_line(ExceptionGroup("t", [HedgeModeError("hedge mode: two-sided")])) == 2
        assert capsys.readouterr().err == "error: hedge mode: two-sided\n"
        assert stop_line(ValueError("bug")) == 1
        assert lines == ["scalper stopped on an unexpected error: ValueError: bug"]
    finally:
        logger.remove(handler)


def test_run_takes_reset_halt() -> None:
    from scalper.cli import build_parser

    assert build_parser().parse_args(["run", "--reset-halt"]).reset_halt is True
    assert build_parser().parse_args(["run"]).reset_halt is False
