"""The private-stream task: order pushes to the confirmations waiting for them.

Pushes are the fast path of order confirmation; the REST poll in ``execution`` is the
safe path, so nothing here is load-bearing for correctness and a lost push costs only
latency. ``bybit.streams.PrivateStream`` removes repeated pushes (Bybit repeats some,
and sends two ``Filled`` pushes when a cancel races a fill) before they reach us.

A reconnect means pushes may have been missed: the engine is told (``Resync``), which
makes it re-read position and open orders before its next entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from ..bybit.parse import ParseStats
from ..bybit.rest import Credentials, wall_clock_ms
from ..bybit.streams import PRIVATE_TOPICS, PrivateStream
from ..bybit.ws import Connected, ConnectFn, Disconnected, WsOptions, WsPolicy, open_ws
from ..core.model import Fill, OrderUpdate
from .metrics import Metrics
from .order_tracking import OrderWatch

__all__ = ["run_private"]


def _log_fill(fill: Fill) -> None:
    logger.bind(symbol=fill.symbol, order_link_id=fill.order_link_id).info(
        "fill: {} {} @ {} fee {}{}",
        fill.side.value,
        fill.qty,
        fill.price,
        fill.fee,
        " (maker)" if fill.is_maker else "",
    )


async def run_private(
    url: str,
    credentials: Credentials,
    watch: OrderWatch,
    on_reconnect: Callable[[str], Awaitable[None]],
    metrics: Metrics,
    *,
    policy: WsPolicy | None = None,
    connect: ConnectFn | None = None,
    clock_ms: Callable[[], float] = wall_clock_ms,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the authenticated private stream until cancelled.

    ``clock_ms`` should be the exchange-aligned clock (``BybitRest.now_ms``): the auth
    ``expires`` is judged by the exchange's clock, not ours.
    """
    options = WsOptions(
        credentials=credentials,
        policy=policy or WsPolicy(),
        connect=connect,
        clock_ms=clock_ms,
        name="private",
        topics=PRIVATE_TOPICS,
    )
    async with open_ws(url, options) as conn:
        # both streams count into the one shared metric, as each failure happens
        stream = PrivateStream(
            conn, stats=ParseStats(name="private", on_error=metrics.count_parse_error)
        )
        task_status.started()
        async for event in stream:
            if isinstance(event, OrderUpdate):
                watch.push(event)
            elif isinstance(event, Fill):
                _log_fill(event)
            elif isinstance(event, Disconnected):
                logger.warning("private stream dropped: {}", event.reason)
            elif isinstance(event, Connected) and event.reconnect:
                logger.info("private stream reconnected: resyncing")
                await on_reconnect("private stream reconnected")
