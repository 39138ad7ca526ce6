"""The account and position endpoints: balances, positions, closed PnL, and the two
position settings the bot writes (the exchange-side stop and the leverage).

The two writes are safe to repeat (they set a value, they do not add one), so they go
through the same retried call as the reads; Bybit's "not modified" reply to a value
that is already set is success.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from loguru import logger

from scalper.core.model import ClosedPnl, PositionSnapshot, TriggerBy

from .endpoints import Endpoints, parsed_row, result_list
from .errors import NotModified, ProtocolError
from .messages import WalletBalance
from .paths import (
    CATEGORY,
    POSITION_CLOSED_PNL,
    POSITION_LIST,
    SET_LEVERAGE,
    TRADING_STOP,
    WALLET_BALANCE,
)
from .rows import closed_pnl_from_wire, position_from_wire, wallet_from_wire
from .transport import dec_str

__all__ = ["AccountCalls"]

#: the settle coin of every contract this bot trades
_SETTLE_COIN = "USDT"


class AccountCalls(Endpoints):
    """Signed reads of the unified account and writes of a position's settings."""

    async def wallet_balance(self, coin: str | None = None) -> WalletBalance:
        """The unified account's balances."""
        path = WALLET_BALANCE
        result = await self._retrier.call("GET", path, {"accountType": "UNIFIED", "coin": coin})
        rows = result_list(result, path)
        if not rows:
            raise ProtocolError(f"{path}: empty list")
        return parsed_row(wallet_from_wire, rows[0], path)

    async def wallet_equity(self) -> Decimal:
        """Equity of the USDT coin (the account's USD ``totalEquity`` if no USDT row)."""
        wallet = await self.wallet_balance(_SETTLE_COIN)
        usdt = wallet.coin(_SETTLE_COIN)
        return usdt.equity if usdt is not None else wallet.total_equity

    async def position(self, symbol: str) -> PositionSnapshot:
        """The (one-way) position on ``symbol``; flat when Bybit lists none."""
        path = POSITION_LIST
        result = await self._retrier.call("GET", path, {"category": CATEGORY, "symbol": symbol})
        snaps = [parsed_row(position_from_wire, row, path) for row in result_list(result, path)]
        open_ = [s for s in snaps if s.symbol == symbol and not s.is_flat]
        if len(open_) > 1:
            raise ProtocolError(f"{path}: {len(open_)} open positions on {symbol} (hedge mode?)")
        if open_:
            return open_[0]
        same = [s for s in snaps if s.symbol == symbol]
        return same[0] if same else PositionSnapshot(symbol=symbol, side=None, size=Decimal(0))

    async def open_positions(self) -> list[PositionSnapshot]:
        """Every non-flat USDT-settled position, on every symbol (all pages of
        ``settleCoin=USDT``), with its armed stops and ``position_idx`` (1/2: hedge mode)."""
        path = POSITION_LIST
        rows = await self._paged(
            path, {"category": CATEGORY, "settleCoin": _SETTLE_COIN, "limit": 200}
        )
        snaps = [parsed_row(position_from_wire, row, path) for row in rows]
        return [s for s in snaps if not s.is_flat]

    async def closed_pnl(
        self, *, start_ms: int, end_ms: int | None = None, symbol: str | None = None
    ) -> list[ClosedPnl]:
        """Closed-PnL records (one per closing order, net of fees) from ``start_ms``,
        newest first, every page (``cursor``). Bybit caps a window at 7 days; the
        caller asks for the UTC day. A malformed row is counted in ``parse_stats`` and
        skipped (one bad row must not hide the others from the loss limit's view)."""
        path = POSITION_CLOSED_PNL
        rows = await self._paged(
            path,
            {
                "category": CATEGORY,
                "symbol": symbol,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": 100,
            },
        )
        return self._good_rows(closed_pnl_from_wire, rows, path, "orderId")

    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None,
        take_profit: Decimal | None = None,
        trigger_by: TriggerBy = TriggerBy.MARK_PRICE,
        position_idx: int = 0,
    ) -> None:
        """Arm, move or remove the Full-mode stop-loss (and take-profit) of a position.

        ``TRADING_STOP`` with ``tpslMode=Full`` and market stop orders.
        ``stop_loss=None`` sends ``"0"``, which removes the stop; ``take_profit=None``
        leaves the take-profit out of the request (unchanged). ``trigger_by`` applies to
        both. 34040 "not modified" (the same values again) is success. Bybit's refusals
        (10001: on the wrong side of the trigger price, a flat position, the position
        mode) raise ``InvalidRequest`` carrying Bybit's text. Safe to repeat, so retried
        like cancel and set-leverage.
        """
        if position_idx not in (0, 1, 2):
            raise ValueError(f"position_idx must be 0, 1 or 2, got {position_idx}")
        for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
            if value is not None and (type(value) is not Decimal or not value > 0):
                raise ValueError(f"{name} must be a positive Decimal, got {value!r}")
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "positionIdx": position_idx,
            "tpslMode": "Full",
            "stopLoss": "0" if stop_loss is None else dec_str(stop_loss),
            "slTriggerBy": trigger_by.value,
            "slOrderType": "Market",
        }
        if take_profit is not None:
            body["takeProfit"] = dec_str(take_profit)
            body["tpTriggerBy"] = trigger_by.value
            body["tpOrderType"] = "Market"
        try:
            await self._retrier.call("POST", TRADING_STOP, body)
        except NotModified:
            logger.bind(symbol=symbol, path=TRADING_STOP).debug(
                "trading-stop on {}: not modified (already set)", symbol
            )

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set buy and sell leverage; "not modified" (110043) counts as success."""
        lev = dec_str(leverage)
        with contextlib.suppress(NotModified):
            await self._retrier.call(
                "POST",
                SET_LEVERAGE,
                {"category": CATEGORY, "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev},
            )
