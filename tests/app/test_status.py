"""The terminal panel (rich): a header pinned above the scrolling log that fits 80x24,
checked field by field on a recording console; the status task drives it (MockClock),
or logs summaries when there is no terminal, and tells systemd the state."""

from __future__ import annotations

import io
from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing
from loguru import logger
from rich.console import Console, Group

from scalper.app import panel as panel_module
from scalper.app.metrics import Metrics
from scalper.app.status import (
    HEADER_ROWS,
    PanelView,
    StatusConsole,
    StatusFacts,
    panel_view,
    run_status,
)
from scalper.core.model import Halt, Side
from tests.unit._engine_helpers import T0, book, holding, ready, run

FULL = PanelView(
    mode="live",
    state="PositionOpen",
    activity="running",
    symbol="SOLUSDT",
    bid=101.23,
    ask=101.25,
    book_age_ms=120,
    position="Buy 9.8",
    entry=Decimal("101.20"),
    stop=100.694,
    stop_on_exchange=True,
    upnl=Decimal("0.25"),
    day_net=Decimal("-3.2"),
    headroom=Decimal("96.80"),
    trades=4,
    wins=3,
    msgs_per_s=123.4,
    drops=2,
    reconnects=1,
    last_alert="07:01:02 position on BTCUSDT is not managed by this bot (excluded)",
)


def recording(width: int = 80, height: int = 24) -> Console:
    return Console(
        file=io.StringIO(),
        width=width,
        height=height,
        record=True,
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
    )


def rendered(panel: StatusConsole, width: int = 80, height: int = 24) -> list[str]:
    console = recording(width, height)
    console.print(Group(*panel.screen(width, height)))
    text = console.export_text()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_header_fits_80x24_field_by_field() -> None:
    panel = StatusConsole(console=recording())
    panel.show(FULL)
    for i in range(40):
        panel.write(f"07:00:{i:02d} INFO  log line {i}\n")
    rows = rendered(panel)
    assert len(rows) == 24
    assert all(len(row) <= 80 for row in rows)
    assert rows[0] == " LIVE   PositionOpen  running  SOLUSDT"
    assert rows[1] == "bid 101.23  ask 101.25  spread 2.0 bp  book 120 ms"
    assert rows[2] == "pos Buy 9.8  entry 101.2  stop 100.694 on exch yes  uPnL +0.25"
    assert rows[3] == "day net -3.20  loss headroom 96.80  trades 4  win 75%"
    assert rows[4] == "msgs/s 123  drops 2  reconnects 1"
    assert rows[5].startswith("alert 07:01:02 position on BTCUSDT is not managed")
    assert rows[6] == "─" * 80
    assert HEADER_ROWS == 7
    # the newest log lines fill the rest, oldest of them first
    assert rows[7:] == [f"07:00:{i:02d} INFO  log line {i}" for i in range(23, 40)]


def test_mode_colours_say_what_is_at_stake() -> None:
    styles = {}
    for mode in ("sim", "demo", "testnet", "live"):
        panel = StatusConsole(console=recording())
        panel.show(PanelView(mode=mode, state="Idle", activity="running"))
        first = next(iter(panel.screen(80, 24)))
        assert first.plain.startswith(f" {mode.upper()} ")
        styles[mode] = str(first.spans[0].style)
    assert styles["live"] == "bold white on red"
    assert styles["sim"] == "bold black on green"
    assert len(set(styles.values())) == 4


def test_a_long_or_multi_line_log_record_never_breaks_the_layout() -> None:
    panel = StatusConsole(console=recording())
    panel.show(FULL)
    panel.write("x" * 300 + "\n")
    panel.write("Traceback (most recent call last):\n  File x\nValueError: boom\n")
    panel.write("half a line, ")
    panel.write("the other half\n")
    rows = rendered(panel)
    assert len(rows) == 24 and all(len(r) <= 80 for r in rows)
    assert rows[0].startswith(" LIVE ")
    tail = [r for r in rows[7:] if r.strip()]
    assert tail == [
        "x" * 79 + "…",
        "Traceback (most recent call last):",
        "  File x",
        "ValueError: boom",
        "half a line, the other half",
    ]


def test_halted_unknown_and_empty_fields() -> None:
    panel = StatusConsole(console=recording())
    panel.show(
        PanelView(mode="demo", state="Halted", activity="HALTED: daily loss 100 reached limit 100")
    )
    rows = rendered(panel)
    assert rows[0] == " DEMO   Halted  HALTED: daily loss 100 reached limit 100  no symbol"
    assert rows[1] == "bid -  ask -  spread - bp".replace(" bp", "") + "  book -"
    assert rows[2] == "pos flat  entry -  stop - on exch -  uPnL -"
    assert rows[3] == "day net -  loss headroom -  trades 0  win -"
    assert rows[5] == "alert -"


def test_panel_view_reads_the_engine() -> None:
    engine = ready()
    run(engine, [book(bid=99.99, ask=100.01, ts=T0)])
    facts = StatusFacts(mode="testnet", trades=2, wins=1)
    facts.add_net(T0 - 86_400_000, Decimal("-50"))  # yesterday: not today's
    facts.add_net(T0, Decimal("2.5"))
    facts.add_net(T0 + 1, Decimal("-0.5"))
    metrics = Metrics(market_dropped=3, reconnects=2)
    flat_view = panel_view(engine, facts, metrics, T0 + 250, 42.0)
    assert (flat_view.mode, flat_view.state, flat_view.activity) == ("testnet", "Idle", "running")
    assert (flat_view.symbol, flat_view.bid, flat_view.ask) == ("SOLUSDT", 99.99, 100.01)
    assert flat_view.book_age_ms == 250
    assert flat_view.position == "flat" and flat_view.upnl is None
    assert flat_view.headroom == Decimal(100)  # nothing lost today
    assert flat_view.day_net == Decimal("2.0")
    assert (flat_view.drops, flat_view.reconnects, flat_view.msgs_per_s) == (3, 2, 42.0)
    assert flat_view.win_rate == 0.5
    assert flat_view.stop_on_exchange is None  # nobody checked yet: shown as ?
    # a position (adopted from the exchange) at 100, marked at the mid 100.00
    run(engine, [holding(Side.BUY, "10", "101")])
    held = panel_view(engine, facts, metrics, T0 + 300, 0.0)
    assert held.position == "Buy 10" and held.entry == Decimal("101")
    assert held.stop == pytest.approx(101 * (1 - 0.005))
    assert held.upnl == Decimal("-10.00")
    assert held.day_net == Decimal("-8.00")  # today's net after fees + the open loss
    assert held.headroom == Decimal("90.00")  # the risk gate's measure
    assert held.stop_on_exchange is False  # the exchange's row shows no stop: "NO"
    facts.stop_on_exchange = True  # a task that checked says so: it wins
    assert panel_view(engine, facts, metrics, T0 + 300, 0.0).stop_on_exchange is True
    facts.stop_on_exchange = None
    # the engine's own view: a position read showing the stop armed
    armed = attrs.evolve(holding(Side.BUY, "10", "101"), stop_loss=Decimal("100.2"))
    run(engine, [armed])
    assert panel_view(engine, facts, metrics, T0 + 300, 0.0).stop_on_exchange is True


async def test_status_task_drives_the_panel_and_leaves_the_log_in_the_scrollback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    console = recording()
    panel = StatusConsole(console=console)
    metrics = Metrics()
    rates: list[float] = []

    def view(rate: float) -> PanelView:
        rates.append(rate)
        metrics.book_updates += 50  # 50 messages per refresh
        return FULL

    panel.write("before the panel\n")
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_status(
                metrics, lambda: "x", panel, view=view, refresh_s=1.0, task_status=task_status
            )
        )
        await trio.sleep(0.5)
        panel.write("while the panel runs\n")
        await trio.sleep(2.0)
        nursery.cancel_scope.cancel()
    assert len(rates) == 3  # at 0, 1 and 2 s
    assert rates[1:] == [50.0, 50.0]
    out = console.file.getvalue()  # type: ignore[attr-defined]
    enter, leave = out.index("\x1b[?1049h"), out.rindex("\x1b[?1049l")
    assert out.index("before the panel") < enter  # printed straight, before the panel
    assert "LIVE" in out[enter:leave]  # the header was drawn on the alternate screen
    assert "while the panel runs" in out[leave:]  # and copied to the scrollback after


async def test_without_a_console_a_summary_is_logged_every_interval_and_systemd_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lines: list[str] = []
    statuses: list[str] = []

    class FakeNotifier:
        def status(self, text: str) -> None:
            statuses.append(text)

    handler = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        with trio.move_on_after(65):
            await run_status(
                Metrics(),
                lambda: "Idle - flat",
                None,
                notifier=FakeNotifier(),  # type: ignore[arg-type]
                summary_interval_s=30.0,
            )
    finally:
        logger.remove(handler)
    summaries = [line for line in lines if line.startswith("status: Idle - flat | ")]
    assert len(summaries) == 2
    assert statuses == ["Idle - flat"] * 65  # every second, 0 ... 64 s


async def test_alert_lines_become_the_last_alert(autojump_clock: trio.testing.MockClock) -> None:
    facts = StatusFacts()
    with trio.move_on_after(1.5):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_status(
                    Metrics(), lambda: "x", None, facts=facts, task_status=task_status
                )
            )
            logger.warning("not an alert")
            assert facts.last_alert is None
            logger.bind(symbol="SOLUSDT").warning("ALERT: halted: shutdown")
    assert facts.last_alert is not None and facts.last_alert.endswith(" halted: shutdown")


def test_a_burst_of_log_lines_is_drawn_once_then_by_the_status_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an hour between frames: no real-time race in the test
    monkeypatch.setattr(panel_module, "REDRAW_MIN_S", 3600.0)
    console = recording()
    panel = StatusConsole(console=console)
    panel.start()
    try:
        panel.show(FULL)  # a frame just drawn
        for i in range(5):
            panel.write(f"burst {i}\n")
        assert panel.dirty  # held back: at most one frame per REDRAW_MIN_S
        before = console.file.getvalue()  # type: ignore[attr-defined]
        assert "burst 4" not in before
        panel.redraw_if_dirty()
        assert not panel.dirty
        assert "burst 4" in console.file.getvalue()  # type: ignore[attr-defined]
    finally:
        panel.stop()


def test_activity_says_halted_paused_or_cooling_down() -> None:
    engine = ready()
    facts, metrics = StatusFacts(), Metrics()
    engine.risk.start_cooldown(T0)
    assert panel_view(engine, facts, metrics, T0 + 1000, 0).activity == "cooling down 2 s"
    assert panel_view(engine, facts, metrics, T0 + 5000, 0).activity == "running"
    engine.pause_reason = "operator"  # type: ignore[attr-defined]
    assert panel_view(engine, facts, metrics, T0 + 5000, 0).activity == "PAUSED: operator"
    run(engine, [Halt(reason="daily loss 100 reached limit 100")])
    view = panel_view(engine, facts, metrics, T0 + 5000, 0)
    assert view.activity == "HALTED: daily loss 100 reached limit 100"
    assert view.state == "Halted"
