"""The order-path row: place -> fill noticed on the simulator, by push and by polling.

The simulator runs in this process on loopback; each round places a Market IOC and
times when the fill is seen by the private stream's execution push (ours) and by REST
polling of ``order/realtime`` at the bot's interval (the baseline).
"""

from __future__ import annotations

import os
import time

import trio

from ..core.model import Side
from .frames import SYMBOL

__all__ = ["order_path"]


async def order_path(rounds: int, poll_s: float) -> tuple[list[float], list[float]]:
    """Place -> fill noticed (ms) by private push and by REST polling, per round."""
    import httpx

    from ..bybit.auth import Credentials
    from ..bybit.rest import BybitRest
    from ..bybit.streams import open_private_stream
    from ..core.model import Fill, OrderIntent, OrderStatus, OrderType, TimeInForce
    from ..sim import SimConfig, open_sim

    creds = Credentials(api_key="sim-key", api_secret="sim-secret")
    push: list[float] = []
    polled: list[float] = []
    clock = time.perf_counter
    fills: dict[str, float] = {}
    arrived = trio.Event()
    async with (
        open_sim(SimConfig(seed=3, symbols=(SYMBOL,))) as sim,
        httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as client,
    ):
        rest = BybitRest(client, creds)
        await rest.sync_clock()
        inst = {i.symbol: i for i in await rest.instruments()}[SYMBOL]
        async with (
            open_private_stream(sim.ws_private_url, creds) as stream,
            trio.open_nursery() as nursery,
        ):

            async def read() -> None:
                nonlocal arrived
                async for event in stream:
                    if isinstance(event, Fill):
                        fills.setdefault(event.order_link_id, clock())
                        arrived.set()
                        arrived = trio.Event()

            nursery.start_soon(read)
            for i in range(rounds):
                link = f"bench-{os.getpid()}-{i}"
                intent = OrderIntent(
                    symbol=SYMBOL,
                    side=Side.BUY if i % 2 == 0 else Side.SELL,
                    order_type=OrderType.MARKET,
                    qty=inst.min_qty,
                    order_link_id=link,
                    time_in_force=TimeInForce.IOC,
                )
                with trio.fail_after(10):
                    t0 = clock()
                    await rest.place_order(intent)
                    while True:  # the REST way: read at once, then every poll_s
                        update = await rest.order(SYMBOL, link)
                        if update is not None and update.status is OrderStatus.FILLED:
                            polled.append((clock() - t0) * 1e3)
                            break
                        await trio.sleep(poll_s)
                    while link not in fills:
                        await arrived.wait()
                    push.append((fills[link] - t0) * 1e3)
                # under Bybit's 10/s order-entry limit, so our client's pacer never waits
                await trio.sleep(0.15)
            nursery.cancel_scope.cancel()
    return push, polled
