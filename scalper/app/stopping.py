"""How trading ends: the graceful stop, and the crash sweep around the trading tree.

A graceful stop halts the engine (a working entry cancelled, the position closed when
``risk.flatten_on_exit``), lets order operations finish, then cancels whatever of ours
is still working and checks. Whatever else ends the trading tree (a task failing, the
journal writer failing, a cancellation from outside such as a second Ctrl+C) runs the
crash sweep in ``run_guarded``: shielded and bounded, it cancels our working orders
and leaves the position and its exchange-side stop in place. (The journal writer used
to sit beside the trading tree: its failure reached the trading tree as ``Cancelled``,
which the sweep did not catch, so the bot exited with orders working.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import trio
from loguru import logger

from ..bybit.errors import BybitError, OrderAlreadyFinal, OrderNotFound
from ..bybit.rest import BybitRest
from ..core.model import Halt
from ..core.strategy import Engine, is_own_order_link_id
from .journal import Journal, JournalFailed, JournalRecord, run_journal
from .order_tracking import InFlight
from .strategy import StrategyRunner

__all__ = [
    "FINAL_SWEEP_TIMEOUT_S",
    "JOURNAL_CHANNEL",
    "JOURNAL_DRAIN_S",
    "JournalWriter",
    "graceful_stop",
    "run_guarded",
    "sweep_our_orders",
]

T = TypeVar("T")

#: journal records waiting for the writer
JOURNAL_CHANNEL = 1024
#: the final sweep of our working orders (list, cancel, list again) gets this long
FINAL_SWEEP_TIMEOUT_S = 5.0
#: what is queued for the journal gets this long to reach the disk at exit
JOURNAL_DRAIN_S = 2.0


class JournalWriter(Protocol):
    """The journal writer task's signature (``run_journal``; tests swap in a failing one)."""

    async def __call__(
        self,
        path: str,
        receive: trio.MemoryReceiveChannel[JournalRecord],
        *,
        task_status: trio.TaskStatus[None] = ...,
    ) -> None: ...


async def run_guarded(
    path: str,
    clock_ms: Callable[[], int],
    trade: Callable[[Journal], Awaitable[T]],
    *,
    sweep: Callable[[], Awaitable[bool]],
    writer: JournalWriter = run_journal,
) -> T:
    """Run ``trade`` beside the journal writer; sweep our orders if it ends abnormally.

    The sweep runs whatever ended ``trade`` short of a normal return: an exception in
    any of its tasks, a failure of the journal writer (which cancels ``trade`` from
    the root nursery: hence ``BaseException``, ``Cancelled`` included) or a
    cancellation from outside. It is shielded (it must run while everything around it
    is being cancelled) and bounded (``FINAL_SWEEP_TIMEOUT_S``). A writer failure
    comes out as ``JournalFailed``, naming the cause in one line.
    """
    journal_send, journal_receive = trio.open_memory_channel[JournalRecord](JOURNAL_CHANNEL)
    journal = Journal(journal_send, clock_ms=clock_ms)
    writer_done = trio.Event()

    async def write(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await writer(path, journal_receive, task_status=task_status)
        except Exception as exc:
            raise JournalFailed(f"journal writer failed: {_cause(exc)}") from exc
        finally:
            writer_done.set()

    async with trio.open_nursery() as root:
        await root.start(write)
        try:
            return await trade(journal)
        except BaseException as exc:
            # Everything of the trading tree has ended by now (its nursery is closed):
            # nothing places an order while the sweep runs.
            with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S) as sweeping:
                sweeping.shield = True
                logger.error(
                    "trading stopped abnormally ({}): cancelling our working orders; "
                    "the position and its exchange stop stay",
                    _cause(exc),
                )
                await sweep()
            raise
        finally:
            # Even after a crash, what is queued reaches the disk: it is what the
            # operator reads to learn what happened. Shielded, but bounded.
            with trio.move_on_after(JOURNAL_DRAIN_S) as drain:
                drain.shield = True
                await journal.aclose()
                await writer_done.wait()


def _cause(exc: BaseException) -> str:
    """One line naming what ended the trading tree."""
    if isinstance(exc, trio.Cancelled):
        return "cancelled (from outside, or by the journal writer's failure)"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_cause(e) for e in exc.exceptions))
    return f"{type(exc).__name__}: {exc}"


async def graceful_stop(
    runner: StrategyRunner, rest: BybitRest, prefix: str, inflight: InFlight, timeout_s: float
) -> bool:
    """Halt the engine (cancel, maybe flatten), let order operations finish, then sweep.

    Returns True when nothing of ours is left working (and, with flatten, no position).
    """
    engine = runner.engine
    await runner.feed(Halt(reason="shutdown"))
    with trio.move_on_after(timeout_s) as waited:
        await runner.wait_until(_settled)
        # an order operation cut in half could land after the sweep: let it end
        await inflight.wait_idle()
    clean = True
    if waited.cancelled_caught:
        clean = False
        logger.error(
            "shutdown: not settled after {} s (state {}, position {}, {} order operations)",
            timeout_s,
            engine.state.value,
            engine.position,
            inflight.count,
        )
    return await sweep_our_orders(rest, prefix, "shutdown") and clean


async def sweep_our_orders(rest: BybitRest, prefix: str, why: str) -> bool:
    """Cancel every working order carrying our prefix, then check; False if any remain."""
    with trio.move_on_after(FINAL_SWEEP_TIMEOUT_S):
        try:
            for order in await rest.open_orders(None):
                if not is_own_order_link_id(order.order_link_id, prefix):
                    continue
                log = logger.bind(symbol=order.symbol, order_link_id=order.order_link_id)
                try:
                    await rest.cancel_order(order.symbol, order.order_link_id)
                    log.warning("{}: cancelled a working order", why)
                except (OrderNotFound, OrderAlreadyFinal):
                    log.info("{}: order ended by itself", why)
                except BybitError as exc:
                    log.error("{}: cancel failed: {}", why, exc)  # noqa: TRY400 (no traceback)
            left = [
                o.order_link_id
                for o in await rest.open_orders(None)
                if is_own_order_link_id(o.order_link_id, prefix)
            ]
        except BybitError as exc:
            logger.error("{}: order sweep failed: {}", why, exc)
            return False
        if left:
            logger.error("{}: orders of ours still working: {}", why, ", ".join(left))
        return not left
    logger.error("{}: order sweep did not finish in {} s", why, FINAL_SWEEP_TIMEOUT_S)
    return False


def _settled(engine: Engine) -> bool:
    """No order working, and flat unless the configuration keeps the position."""
    flat_enough = engine.position is None or not engine.config.flatten_on_halt
    return engine.working_order_link_id is None and flat_enough
