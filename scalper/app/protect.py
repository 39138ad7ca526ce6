"""Setting a position's exchange-side stop (``ProtectPosition`` -> trading-stop).

Its own module because its outcomes are not an order's: a refused stop makes the
engine close the position (unless the position turns out to be gone already), and a
stop that transient failures kept from being set is asked for again by the engine at
the next position read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from loguru import logger

from ..bybit.errors import BybitError, ExchangeError, RateLimited, ServerBusy, TransportError
from ..core.model import Event, ProtectionFailed, ProtectionSet, ProtectPosition
from .api import ExchangeApi
from .confirm import ExecutionConfig

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["protect_position"]


async def _refused(
    api: ExchangeApi, command: ProtectPosition, exc: ExchangeError, log: Logger
) -> Event:
    """The event for a refused stop: ``ProtectionFailed``, unless the position is gone.

    Bybit also refuses a stop for a zero position: the position was closed meanwhile
    (by hand, by a liquidation). That is not a protection failure to close "at once"
    (a reduce-only close of nothing is refused in turn) but an external close: one
    read tells, and the flat position is reported instead.
    """
    try:
        held = await api.position(command.symbol)
    except BybitError as read_exc:
        log.warning("position read after the refused stop failed: {}", read_exc)
        held = None
    if held is not None and held.is_flat:
        log.warning("the position on {} is gone (flat): reported as such", command.symbol)
        return held
    return ProtectionFailed(symbol=command.symbol, reason=str(exc))


async def protect_position(
    api: ExchangeApi, command: ProtectPosition, config: ExecutionConfig
) -> Event | None:
    """Set the position's exchange-side stop; the engine event for its outcome.

    A refusal (``InvalidRequest`` and the other typed refusals: the wrong side of the
    price, say) is ``ProtectionFailed``: the engine then closes the position; unless a
    read shows the position gone, which is reported as the flat ``PositionSnapshot``.
    Transient failures (network, 5xx, rate limits) are retried, bounded; if they
    outlast the bound there is no event: the stop is still missing, and the next
    position read (every reconcile interval) makes the engine ask again.
    """
    log = logger.bind(symbol=command.symbol)
    attempt = 0
    with trio.move_on_after(config.protect_timeout_s):
        while attempt < config.protect_attempts:
            attempt += 1
            try:
                await api.set_trading_stop(
                    command.symbol, stop_loss=command.stop_loss, trigger_by=command.trigger_by
                )
            except (TransportError, ServerBusy, RateLimited) as exc:
                log.warning("exchange stop not set yet (attempt {}): {}", attempt, exc)
                await trio.sleep(config.poll_interval_s * attempt)
                continue
            except ExchangeError as exc:
                log.warning("exchange refused the stop {}: {}", command.stop_loss, exc)
                return await _refused(api, command, exc, log)
            except BybitError as exc:
                log.warning("exchange stop not set: {}", exc)
                return None
            log.debug("exchange stop set: {} by {}", command.stop_loss, command.trigger_by.value)
            return ProtectionSet(symbol=command.symbol, stop_loss=command.stop_loss)
    log.error("exchange stop {} not set after {} attempts", command.stop_loss, attempt)
    return None
