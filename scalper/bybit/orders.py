"""Order entry on the wire: the create body, and placing an order exactly once.

An order create is never repeated blindly (``OrderCreator.place``). The body (with the
intent's ``orderLinkId``) is serialized once; a reply that leaves the outcome unknown
(timeout or broken connection after sending, 5xx, 10000/10016, an unreadable body) or a
110072 duplicate is resolved by *reading* the order by ``orderLinkId``
(``ORDER_REALTIME``, then ``ORDER_HISTORY``). If it exists, that is the result. Only
when the read says it does not exist is the same body sent again -- and then Bybit's own
orderLinkId uniqueness turns a late-arriving first copy into a 110072, which is resolved
by reading again. Rejections that prove nothing was executed (10006, 10002, connect
failures) are retried as such (``Retrier.retry_delay``). One deadline
(``total_budget_s`` from the start of the call) covers pacing, sends, backoffs, the
settle pause and the read-backs, so the call ends within the budget plus one request
timeout. Once a create of the call may have executed, every way of ending without a
confirmed order (out of time or attempts, a 110072 whose order is not visible yet, a
refused resend) is ``AmbiguousOutcome``, never a rejection.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import attrs
import trio
from loguru import logger

from scalper.core.model import OrderIntent, OrderType, OrderUpdate

from .backoff import backoff_delay
from .errors import (
    AmbiguousOutcome,
    BybitError,
    DuplicateOrder,
    HTTPStatusError,
    ProtocolError,
    RequestTimeout,
    ServerBusy,
)
from .paths import CATEGORY, ORDER_CREATE
from .retry import Retrier, RetryPolicy
from .transport import Transport, dec_str, encode_json

__all__ = ["UNKNOWN_OUTCOME", "OrderCreator", "OrderRef", "ReadOrder", "order_body"]

#: errors after which an order create may or may not exist: read before resending.
UNKNOWN_OUTCOME: Final = (
    AmbiguousOutcome,
    ServerBusy,
    ProtocolError,
    DuplicateOrder,
    HTTPStatusError,
)


@attrs.frozen
class OrderRef:
    """The two ids of one order, as order-entry replies echo them."""

    order_id: str
    order_link_id: str


class ReadOrder(Protocol):
    """Reads one order by orderLinkId within ``deadline`` (``BybitRest.order``)."""

    def __call__(
        self, symbol: str, order_link_id: str | None = None, *, deadline: float | None = None
    ) -> Awaitable[OrderUpdate | None]: ...


def order_body(intent: OrderIntent) -> dict[str, Any]:
    """The order-create body (``ORDER_CREATE``) for ``intent``, keys in the signed order.

    An intent with a ``stop_loss`` also carries ``stopLoss``, ``slTriggerBy``,
    ``tpslMode=Full`` (the stop covers the whole position and Bybit cancels it when the
    position closes) and ``slOrderType=Market``.
    """
    body: dict[str, Any] = {
        "category": CATEGORY,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "orderType": intent.order_type.value,
        "qty": dec_str(intent.qty),
    }
    if intent.price is not None:
        body["price"] = dec_str(intent.price)
    body["timeInForce"] = (
        "IOC" if intent.order_type is OrderType.MARKET else intent.time_in_force.value
    )
    body["positionIdx"] = 0
    body["orderLinkId"] = intent.order_link_id
    body["reduceOnly"] = intent.reduce_only
    if intent.stop_loss is not None:
        body["stopLoss"] = dec_str(intent.stop_loss)
        body["slTriggerBy"] = intent.sl_trigger_by.value
        body["tpslMode"] = "Full"
        body["slOrderType"] = "Market"
    return body


@attrs.define(eq=False)
class OrderCreator:
    """Places an order at most once, resolving unknown outcomes by reading it back.

    ``on_send()`` is called for every create put on the wire (the facade counts them);
    ``read_order`` is the facade's ``order`` read; ``policy()`` is read at each use.
    """

    _transport: Transport
    _retrier: Retrier
    _policy: Callable[[], RetryPolicy] = attrs.field(kw_only=True)
    _sleep: Callable[[float], Awaitable[None]] = attrs.field(kw_only=True)
    _rng: random.Random = attrs.field(kw_only=True)
    _read_order: ReadOrder = attrs.field(kw_only=True)
    _on_send: Callable[[], None] = attrs.field(kw_only=True)

    async def place(self, intent: OrderIntent) -> str:
        """Place ``intent`` exactly once; returns Bybit's orderId (see the module doc)."""
        body = encode_json(order_body(intent))
        link_id = intent.order_link_id
        log = logger.bind(order_link_id=link_id, symbol=intent.symbol, path=ORDER_CREATE)
        policy = self._policy()
        # One deadline for the whole call: pacing, sends, backoffs and read-backs all
        # spend it, so place_order ends within total_budget_s (+ one request timeout).
        deadline = trio.current_time() + policy.total_budget_s
        #: a create of this call may have executed (its outcome was never settled)
        maybe_sent = False
        last: BybitError | None = None
        attempt = 0
        while True:
            attempt += 1
            if not await self._retrier.pace(ORDER_CREATE, deadline):
                raise self._out_of_time(link_id, attempt - 1, last, maybe_sent) from last
            self._on_send()
            try:
                result, _ = await self._transport.send("POST", ORDER_CREATE, "", body)
                order_id = result.get("orderId")
                if type(order_id) is not str or not order_id:
                    raise ProtocolError(f"{ORDER_CREATE}: reply without orderId")
            except UNKNOWN_OUTCOME as exc:
                if isinstance(exc, HTTPStatusError) and not exc.retryable:
                    # 4xx: this request was refused before it could execute
                    if maybe_sent:  # ... but an earlier copy may have
                        raise self._out_of_time(link_id, attempt, exc, True) from exc
                    raise
                maybe_sent = True
                last = exc
                log.warning("order create outcome unknown ({}); reading it back", exc)
                existing = await self._resolve(intent, exc, deadline)
                if existing is not None:
                    log.bind(order_id=existing.order_id).info(
                        "order {} exists ({}): not resending", link_id, existing.status.value
                    )
                    return existing.order_id
                if isinstance(exc, DuplicateOrder):
                    # The id is taken, so an order with it exists or existed, but the
                    # read cannot see it (the order history lags). Never resend, and never
                    # report a rejection: the caller must confirm by reading later.
                    raise AmbiguousOutcome(
                        f"order create {link_id}: orderLinkId already used (110072) but the "
                        "order is not visible yet: it may exist"
                    ) from exc
                pause = backoff_delay(attempt, policy.base_delay_s, policy.max_delay_s, self._rng)
                if attempt >= policy.max_attempts or trio.current_time() + pause > deadline:
                    raise AmbiguousOutcome(
                        f"order create {link_id}: not placed after {attempt} attempts"
                    ) from exc
                log.info("order {} does not exist: resending the same request", link_id)
                await self._sleep(pause)
            except BybitError as exc:
                last = exc
                try:
                    delay = await self._retrier.retry_delay(exc, attempt, deadline)
                except BybitError as resync_exc:  # the 10002 clock re-sync failed
                    if maybe_sent:
                        raise self._out_of_time(link_id, attempt, resync_exc, True) from resync_exc
                    raise
                if delay is None:
                    log.bind(ret_code=getattr(exc, "ret_code", None)).warning(
                        "order create {} failed: {}", link_id, exc
                    )
                    if maybe_sent:
                        # Out of attempts or time, or this resend was refused -- but an
                        # earlier create of this call may have executed (a refusal of the
                        # copy, e.g. 110007 because the first took the margin, says
                        # nothing about it): never report that as a rejection.
                        raise self._out_of_time(link_id, attempt, exc, maybe_sent) from exc
                    raise
                log.bind(ret_code=getattr(exc, "ret_code", None)).info(
                    "order create {} not executed ({}); retrying in {:.3f}s", link_id, exc, delay
                )
                await self._sleep(delay)
            else:
                log.bind(order_id=order_id).debug("order {} placed", link_id)
                return order_id

    @staticmethod
    def _out_of_time(
        link_id: str, attempts: int, last: BybitError | None, maybe_sent: bool
    ) -> BybitError:
        """The error for an order create that ended unconfirmed (out of attempts or
        time, or a resend refused): ambiguous if any create of this call may have
        executed, else "not sent" (a timeout)."""
        what = f"order create {link_id}: not confirmed after {attempts} attempt(s)"
        if last is not None:
            what += f"; last: {last}"
        err: BybitError
        if maybe_sent:
            err = AmbiguousOutcome(f"{what}; an earlier create may have executed")
        else:
            err = RequestTimeout(f"{what}; nothing was executed")
        err.__cause__ = last
        return err

    async def _resolve(
        self, intent: OrderIntent, cause: BybitError, deadline: float
    ) -> OrderUpdate | None:
        """Read the order whose create had an unknown outcome (None: it does not exist).

        Spends the caller's ``deadline``; running out of it is ``AmbiguousOutcome``.
        """
        link_id = intent.order_link_id
        settle_s = self._policy().settle_delay_s
        if trio.current_time() + settle_s >= deadline:
            raise AmbiguousOutcome(
                f"order create {link_id}: outcome unknown ({cause}) and no time left to read it"
            ) from cause
        await self._sleep(settle_s)
        try:
            return await self._read_order(intent.symbol, order_link_id=link_id, deadline=deadline)
        except BybitError as exc:
            raise AmbiguousOutcome(
                f"order create {link_id}: outcome unknown ({cause}) and the "
                f"read-back failed ({exc})"
            ) from exc
