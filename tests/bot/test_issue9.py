"""Issue 9 against the simulator: the whole bot, in-process and as processes.

* a journal writer that fails (a full disk) while the bot holds a position and an
  order of ours rests: the sweep cancels our orders, the position and its exchange stop
  stay, and the stop line names the cause (exit 1);
* a public-stream reconnect reaches the engine as ``Resync(market_gap=True)``;
* the daily-loss latch survives a restart on the same journal, and ``--reset-halt``
  lifts it;
* a hedge-mode account is refused, exit 2;
* kill -9 while holding, then a price jump through the stop: the exchange's stop closes
  the position.
"""

from __future__ import annotations

import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from scalper.app.journal import JournalFailed, JournalRecord, read_records, run_journal
from scalper.app.main import _leaves, stop_line
from scalper.core.model import EngineState, Event, Resync
from scalper.core.strategy import Engine
from scalper.sim import Sim

from .conftest import LogCapture, bot_settings, running_bot, sim_exchange, wait_engine, wait_for
from .test_process import Proc, exchange, sim_state, start_bot

DAY_MS = 86_400_000
QUICK: dict[str, Any] = {
    "strategy__window": 30,
    "strategy__min_ticks": 10,
    "strategy__momentum_threshold": 0.0003,
    "strategy__max_hold_s": 2.0,
}
HOLDING: dict[str, Any] = {
    **QUICK,
    "strategy__max_hold_s": 0,
    "strategy__stop_loss_pct": 3.0,
    "strategy__take_profit_pct": 6.0,
}


def _open(engine: Engine) -> bool:
    return engine.state is EngineState.POSITION_OPEN


def _ours(sim: Sim, prefix: str = "scalp-") -> list[dict[str, Any]]:
    return [o for o in sim.state()["open_orders"] if o["orderLinkId"].startswith(prefix)]


def _held(sim: Sim) -> list[dict[str, Any]]:
    return [p for p in sim.state()["positions"] if Decimal(p["size"]) != 0]


# ---------------------------------------------------------------- journal failure


class FailingDisk:
    """A journal writer that writes normally until ``fail`` is set, then dies like a
    full disk would (the writer task raises)."""

    def __init__(self) -> None:
        self.fail = trio.Event()

    async def __call__(
        self,
        path: str,
        receive: trio.MemoryReceiveChannel[JournalRecord],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        inner_send, inner_receive = trio.open_memory_channel[JournalRecord](1024)

        async def forward() -> None:
            async with receive, inner_send:
                async for record in receive:
                    await inner_send.send(record)

        async with trio.open_nursery() as nursery:
            await nursery.start(run_journal, path, inner_receive)
            nursery.start_soon(forward)
            task_status.started()
            await self.fail.wait()
            raise OSError(28, "No space left on device")


async def _rest_order(sim: Sim, bot_rest: Any, symbol: str, link_id: str) -> None:
    """A resting limit order of ours (our prefix) far below the market on ``symbol``."""
    from scalper.core.instrument import round_price
    from scalper.core.model import OrderIntent, OrderType, Side, TimeInForce

    instrument = next(i for i in await bot_rest.instruments() if i.symbol == symbol)
    last = (await bot_rest.tickers(symbol))[0].last_price
    price = round_price(instrument, Decimal(str(last)) * Decimal("0.7"), Side.BUY)
    await bot_rest.place_order(
        OrderIntent(
            symbol=symbol,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=instrument.min_qty * 10,
            price=price,
            time_in_force=TimeInForce.GTC,
            order_link_id=link_id,
        )
    )


async def test_a_failing_journal_cancels_our_orders_keeps_the_position_and_exits_1(
    tmp_path: Path, logs: LogCapture
) -> None:
    settings = bot_settings(tmp_path, **HOLDING)
    disk = FailingDisk()
    async with sim_exchange(seed=3) as sim:
        with pytest.raises(BaseExceptionGroup) as caught, trio.fail_after(90):
            async with running_bot(sim, settings, journal_writer=disk) as (bot, _):
                await wait_engine(bot, _open, 60)
                symbol = bot.engine.symbol
                other = next(i.symbol for i in await bot.rest.instruments() if i.symbol != symbol)
                # an order of ours working on another symbol: only the sweep cancels it
                await _rest_order(sim, bot.rest, other, "scalp-crashtest-e1")
                assert [o["orderLinkId"] for o in _ours(sim)] == ["scalp-crashtest-e1"]
                sim.exchange.paused = True  # the position stays as it is from here
                before = _held(sim)
                assert [p["symbol"] for p in before] == [symbol]
                disk.fail.set()
                await trio.sleep_forever()
        after = _held(sim)
        assert _ours(sim) == [], "the sweep cancelled our working orders"
        # the crash sweep closes nothing: the position, and its exchange stop, stay
        assert [(p["symbol"], p["size"], p.get("stopLoss")) for p in after] == [
            (p["symbol"], p["size"], p.get("stopLoss")) for p in before
        ]
        assert after[0]["stopLoss"] not in ("", "0"), "the exchange stop is in place"
    leaves = _leaves(caught.value)
    assert any(isinstance(e, JournalFailed) and "No space left" in str(e) for e in leaves)
    assert any("cancelling our working orders" in m for m in logs.errors())
    logs.lines.clear()
    assert stop_line(caught.value) == 1
    assert [m for m in logs.errors() if m.startswith("scalper stopped")] == [
        "scalper stopped: JournalFailed: journal writer failed: OSError: "
        "[Errno 28] No space left on device"
    ]


# ---------------------------------------------------------------- market gap


async def test_a_public_reconnect_reaches_the_engine_as_a_market_gap(
    tmp_path: Path, logs: LogCapture
) -> None:
    settings = bot_settings(tmp_path, **QUICK)
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, _):
        seen: list[Event] = []
        real = bot.engine.handle

        def spy(event: Event, now_ms: int) -> Any:
            seen.append(event)
            return real(event, now_ms)

        bot.engine.handle = spy  # type: ignore[method-assign]
        await wait_for(lambda: bot.metrics.book_updates > 10, 10)
        sim.inject({"kind": "ws_disconnect", "stream": "public"})
        await wait_for(lambda: any(isinstance(e, Resync) and e.market_gap for e in seen), 10)
        sim.inject({"kind": "ws_disconnect", "stream": "private"})
        await wait_for(lambda: bot.metrics.reconnects >= 2, 10)
        await wait_for(lambda: sum(isinstance(e, Resync) for e in seen) >= 2, 10)
        private = [e for e in seen if isinstance(e, Resync) and not e.market_gap]
        assert private, "a private reconnect is a resync, not a market gap"


# ---------------------------------------------------------------- restart latch


async def test_a_loss_halt_survives_a_restart_and_reset_halt_lifts_it(
    tmp_path: Path, logs: LogCapture
) -> None:
    # A loss limit of one cent: the first position's closing-fee estimate alone
    # breaches it, so the engine halts (and flattens) right after its first entry.
    settings = bot_settings(tmp_path, **QUICK, risk__max_daily_loss_usd=0.01)
    journal = settings.journal.path
    async with sim_exchange(seed=3) as sim:
        async with running_bot(sim, settings) as (bot, _):
            await wait_engine(
                bot, lambda e: e.state is EngineState.HALTED and e.position is None, 60
            )
            await wait_for(lambda: _held(sim) == [], 10)
        halted = [r for r in read_records(journal, ("risk_state",)) if r.data["halted"]]
        assert halted, "the latch was journaled"
        history = len(sim.state()["order_history"])

        async with running_bot(sim, settings) as (bot, _):
            assert bot.engine.state is EngineState.HALTED
            # a bounded wait with the market running: no order, the engine stays halted
            with trio.move_on_after(4.0):
                while True:
                    assert bot.engine.state is EngineState.HALTED
                    assert len(sim.state()["order_history"]) == history
                    await trio.sleep(0.1)
            assert any("daily-loss halt restored" in m for m in logs.messages())

        async with running_bot(sim, settings, reset_halt=True) as (bot, _):
            prefix = f"scalp-{bot.session_tag}-"
            await wait_for(
                lambda: any(
                    o["orderLinkId"].startswith(prefix) for o in sim.state()["order_history"]
                ),
                60,
            )
    resets = list(read_records(journal, ("halt_reset",)))
    assert len(resets) == 1 and resets[0].data["user"] and resets[0].data["host"]
    assert any(m.startswith("ALERT: --reset-halt") for m in logs.messages())


# ---------------------------------------------------------------- hedge mode


def test_a_hedge_mode_account_is_refused_with_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = Proc(["exchange", "--port", "0", "--seed", "3", "--hedge-mode"])
    try:
        url = proc.wait_line(r"(http://127\.0\.0\.1:\d+)", timeout=20).group(1)
        bot = start_bot(url, tmp_path / "j.sqlite3", duration_s=60)
        try:
            assert bot.popen.wait(timeout=30) == 2
            bot.drain()
        finally:
            bot.stop()
        assert any(line.startswith("error: hedge mode") for line in bot.lines), bot.lines
        assert not any("Traceback" in line for line in bot.lines)
        assert sim_state(url)["order_history"] == []
    finally:
        proc.popen.send_signal(signal.SIGINT)
        try:
            proc.popen.wait(timeout=10)
        finally:
            proc.stop()


# ---------------------------------------------------------------- the exchange stop


def test_kill_9_while_holding_then_the_exchange_stop_closes_the_position(
    tmp_path: Path,
) -> None:
    keep_open = {
        "SCALPER_STRATEGY__STOP_LOSS_PCT": "2",
        "SCALPER_STRATEGY__TAKE_PROFIT_PCT": "10",
        "SCALPER_STRATEGY__MAX_HOLD_S": "0",
    }
    with exchange() as url:
        bot = start_bot(url, tmp_path / "j.sqlite3", **keep_open)
        try:
            deadline = time.monotonic() + 60
            protected: list[dict[str, Any]] = []
            while not protected:
                assert time.monotonic() < deadline, "no protected position within 60 s"
                protected = [
                    p
                    for p in sim_state(url)["positions"]
                    if Decimal(p["size"]) > 0 and p.get("stopLoss") not in (None, "", "0")
                ]
                time.sleep(0.2)
        finally:
            bot.popen.send_signal(signal.SIGKILL)
            bot.popen.wait(timeout=10)
        position = protected[0]
        symbol, side = position["symbol"], position["side"]
        jump = -15 if side == "Buy" else 15  # through the stop (2 % + margin away)
        reply = httpx.post(
            f"{url}/sim/faults",
            json={"kind": "price_jump", "symbol": symbol, "pct": jump},
            timeout=5,
        )
        assert reply.status_code == 200, reply.text
        deadline = time.monotonic() + 15
        while any(
            p["symbol"] == symbol and Decimal(p["size"]) > 0 for p in sim_state(url)["positions"]
        ):
            assert time.monotonic() < deadline, "the exchange did not close the position"
            time.sleep(0.2)
        closes = [
            o
            for o in sim_state(url)["order_history"]
            if o["symbol"] == symbol and o.get("createType") == "CreateByStopLoss"
        ]
        assert len(closes) == 1, closes
        assert closes[0]["orderLinkId"] == ""
