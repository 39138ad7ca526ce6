"""The private-stream task: order pushes to the confirmations waiting for them.

Pushes are the fast path of order confirmation; the REST poll in ``execution`` is the
safe path, so nothing here is load-bearing for correctness and a lost push costs only
latency. Bybit may repeat a push (and sends two ``Filled`` pushes when a cancel races a
fill), so updates are de-duplicated before they are passed on.

A reconnect means pushes may have been missed: the engine is told (``Resync``), which
makes it re-read position and open orders before its next entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import trio
from loguru import logger

from ..bybit.parse import FillsMessage, OrdersMessage, ParseStats, parse_message
from ..bybit.rest import Credentials
from ..bybit.ws import Connected, ConnectFn, Disconnected, WsPolicy, open_ws
from .execution import OrderWatch
from .metrics import Metrics

__all__ = ["PRIVATE_TOPICS", "SeenSet", "run_private"]

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")


class SeenSet:
    """The last ``size`` keys seen, for de-duplicating pushes in bounded memory."""

    def __init__(self, size: int = 4096) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def first_time(self, key: Hashable) -> bool:
        """True the first time ``key`` is offered (within the window)."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


async def run_private(
    url: str,
    api_key: str,
    api_secret: str,
    watch: OrderWatch,
    on_reconnect: Callable[[str], Awaitable[None]],
    metrics: Metrics,
    *,
    policy: WsPolicy | None = None,
    connect: ConnectFn | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the authenticated private stream until cancelled."""
    stats = ParseStats(name="private")
    seen = SeenSet()
    credentials = Credentials(api_key=api_key, api_secret=api_secret)
    async with open_ws(
        url,
        credentials=credentials,
        policy=policy or WsPolicy(),
        connect=connect,
        name="private",
        topics=PRIVATE_TOPICS,
    ) as conn:
        task_status.started()
        async for item in conn:
            if isinstance(item, Disconnected):
                logger.warning("private stream dropped: {}", item.reason)
                continue
            if isinstance(item, Connected):
                if item.reconnect:
                    logger.info("private stream reconnected: resyncing")
                    await on_reconnect("private stream reconnected")
                continue
            before = stats.errors
            msg = parse_message(item, stats)
            # the count is shared with the public stream: add, never overwrite
            metrics.parse_errors += stats.errors - before
            if isinstance(msg, OrdersMessage):
                for update in msg.updates:
                    key = (update.order_id, update.status, update.cum_exec_qty, update.updated_ms)
                    if seen.first_time(key):
                        watch.push(update)
            elif isinstance(msg, FillsMessage):
                for fill in msg.fills:
                    if seen.first_time(("exec", fill.exec_id)):
                        logger.bind(symbol=fill.symbol, order_link_id=fill.order_link_id).info(
                            "fill: {} {} @ {} fee {}{}",
                            fill.side.value,
                            fill.qty,
                            fill.price,
                            fill.fee,
                            " (maker)" if fill.is_maker else "",
                        )
