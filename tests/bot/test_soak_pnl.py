"""Found by the chaos soak (issue 10.2): the day's net PnL the engine holds must equal
the exchange's closed-PnL rows (fees included) within a cent.

It did not: the execution task reported an order's end without the exchange's order id,
so the engine booked each of its closes provisionally under no id (for good), and when
the close's closed-PnL row came it did not know the order as its own: the row was
booked again as a "foreign" close. Every close counted twice, so the daily-loss limit
saw twice the losses (and twice the gains). The whole bot against the simulator,
in-process: after a few round trips, each close's row replaces its provisional result
and the day's total equals the simulator's rows.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from scalper.core.model import EngineState

from .conftest import LogCapture, bot_settings, running_bot, sim_exchange, wait_engine, wait_for

QUICK: dict[str, Any] = {
    "strategy__window": 30,
    "strategy__min_ticks": 10,
    "strategy__momentum_threshold": 0.0003,
    "strategy__max_hold_s": 2.0,
    "strategy__position_usd": 100,
}


def _sim_net(sim: Any) -> Decimal:
    account = sim.exchange.accounts["sim-key"]
    return sum((r.net for r in account.closed_pnl.values()), Decimal(0))


async def test_the_days_net_equals_the_exchanges_closed_pnl_rows(
    tmp_path: Path, logs: LogCapture
) -> None:
    settings = bot_settings(tmp_path, **QUICK)
    async with sim_exchange(seed=3) as sim, running_bot(sim, settings) as (bot, _):
        rows = sim.exchange.accounts["sim-key"].closed_pnl
        await wait_for(lambda: len(rows) >= 2, 90)
        # between trades (flat, nothing working), once every row is booked
        await wait_engine(
            bot,
            lambda e: (
                e.state is EngineState.IDLE
                and e.position is None
                and len(e.risk.book.booked_order_ids) >= len(rows)
            ),
            60,
        )
        engine_net = bot.engine.risk.book.realised_net
        sim_net = _sim_net(sim)
        booked = [m for m in logs.messages() if m.startswith("closed PnL ")]
    assert abs(engine_net - sim_net) <= Decimal("0.01"), (engine_net, sim_net, booked)
    # our own closes are recognised as ours: their rows replace the provisional result
    assert booked and not [m for m in booked if ", foreign)" in m], booked
