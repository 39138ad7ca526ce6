"""Bybit's record shapes (REST rows and private-stream pushes) built from venue records.

Each function returns every field Bybit's documented payload carries (samples in
``tests/fixtures/bybit``), with Bybit's JSON types: numbers as strings, the
listed ints as ints, bools as bools, fields we do not model at Bybit's neutral value
(``""``, ``"0"``, ``"UNKNOWN"``). The REST and the stream variants differ where Bybit's
do: ``avgPrice`` vs ``entryPrice`` on positions, ``extraFees`` ``""`` vs ``[]``, unset
enums ``"UNKNOWN"`` vs ``""``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounts import Account, ClosedPnlRecord, Execution, Order, Position
from .specs import SymbolSpec

__all__ = [
    "closed_pnl_row",
    "execution_fast_row",
    "execution_row",
    "flat_like",
    "money",
    "order_row",
    "position_row",
    "wallet_row",
]

_EIGHT = Decimal("1e-8")


def money(value: Decimal) -> str:
    """An amount as Bybit prints it: at most 8 decimals, no trailing zeros, "0" for zero."""
    text = format(value.quantize(_EIGHT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _px(spec: SymbolSpec, value: Decimal) -> str:
    return format(value.quantize(Decimal(1).scaleb(-spec.price_scale)), "f")


def _qty(spec: SymbolSpec, value: Decimal) -> str:
    return format(value.quantize(spec.qty_step), "f")


def order_row(order: Order, spec: SymbolSpec, *, stream: bool) -> dict[str, Any]:
    """An order as in ``/v5/order/realtime`` / ``history`` (or the ``order`` push)."""
    unset = "" if stream else "UNKNOWN"
    leaves = order.leaves_qty
    fee = money(order.cum_fee)
    row: dict[str, Any] = {
        "orderId": order.order_id,
        "orderLinkId": order.order_link_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": _px(spec, order.price),
        "qty": _qty(spec, order.qty),
        "side": order.side,
        "isLeverage": "",
        "positionIdx": order.position_idx,
        "orderStatus": order.status,
        "cancelType": order.cancel_type,
        "rejectReason": order.reject_reason,
        "avgPrice": money(order.avg_price),
        "leavesQty": _qty(spec, leaves),
        "leavesValue": money(leaves * order.price),
        "cumExecQty": _qty(spec, order.cum_qty),
        "cumExecValue": money(order.cum_value),
        "cumExecFee": fee,
        "timeInForce": order.time_in_force,
        "orderType": order.order_type,
        "stopOrderType": order.stop_order_type or unset,
        "orderIv": "",
        "triggerPrice": (
            _px(spec, order.trigger_price)
            if order.trigger_price
            else ("" if stream else _px(spec, Decimal(0)))
        ),
        "takeProfit": _stop_px(spec, order.take_profit, stream),
        "stopLoss": _stop_px(spec, order.stop_loss, stream),
        "tpTriggerBy": order.tp_trigger_by or unset,
        "slTriggerBy": order.sl_trigger_by or unset,
        "triggerDirection": order.trigger_direction,
        "triggerBy": order.trigger_by or unset,
        "lastPriceOnCreated": order.last_price_on_created,
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": order.close_on_trigger,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "Full" if order.take_profit or order.stop_loss else "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createType": order.create_type,
        "createdTime": str(order.created_ms),
        "updatedTime": str(order.updated_ms),
        "cumFeeDetail": {"USDT": fee} if order.cum_fee else {},
        "rpiTakerAccess": False,
        "rpiMatchedQty": "0",
    }
    if stream:
        row["category"] = "linear"
        row["closedPnl"] = money(order.closed_pnl)
        row["feeCurrency"] = "USDT"
        del row["isLeverage"]
    else:
        row["slippageToleranceType"] = "UNKNOWN"
        row["slippageTolerance"] = ""
        row["extraFees"] = ""
    return row


def _stop_px(spec: SymbolSpec, text: str, stream: bool) -> str:
    """An order's attached TP/SL: the price, or Bybit's "none" ("" on the stream,
    "0.00"-style over REST)."""
    if text:
        return _px(spec, Decimal(text))
    return "" if stream else _px(spec, Decimal(0))


def execution_row(execution: Execution, spec: SymbolSpec, *, stream: bool) -> dict[str, Any]:
    """A fill as in ``/v5/execution/list`` (or the ``execution`` push)."""
    order = execution.order
    row: dict[str, Any] = {
        "symbol": order.symbol,
        "orderType": order.order_type,
        "underlyingPrice": "",
        "orderLinkId": order.order_link_id,
        "side": order.side,
        "indexPrice": "",
        "orderId": order.order_id,
        "stopOrderType": order.stop_order_type or "UNKNOWN",
        "leavesQty": _qty(spec, execution.leaves_qty),
        "execTime": str(execution.exec_ms),
        "feeCurrency": "USDT",
        "isMaker": execution.is_maker,
        "execFee": money(execution.fee),
        "feeRate": format(execution.fee_rate, "f"),
        "execId": execution.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": execution.mark_price,
        "execPrice": _px(spec, execution.price),
        "markIv": "",
        "orderQty": _qty(spec, order.qty),
        "orderPrice": _px(spec, order.price),
        "execValue": money(execution.value),
        "execType": "Trade",
        "execQty": _qty(spec, execution.qty),
        "closedSize": _qty(spec, execution.closed_size) if execution.closed_size else "",
        "extraFees": "",
        "seq": execution.seq,
        "execPnl": money(execution.exec_pnl),
        "createType": order.create_type,
    }
    if stream:
        row["category"] = "linear"
        row["isLeverage"] = "0"
        row["marketUnit"] = ""
        row["extraFees"] = []
    return row


def execution_fast_row(execution: Execution, spec: SymbolSpec) -> dict[str, Any]:
    """A fill as in the ``execution.fast`` push (11 fields; no orderLinkId on maker fills)."""
    order = execution.order
    return {
        "category": "linear",
        "symbol": order.symbol,
        "execId": execution.exec_id,
        "execPrice": _px(spec, execution.price),
        "execQty": _qty(spec, execution.qty),
        "orderId": order.order_id,
        "isMaker": execution.is_maker,
        "orderLinkId": "" if execution.is_maker else order.order_link_id,
        "side": order.side,
        "execTime": str(execution.exec_ms),
        "seq": execution.seq,
    }


def flat_like(pos: Position) -> Position:
    """A flat position record on ``pos``'s symbol and leverage (a hedge-mode side not held)."""
    return Position(symbol=pos.symbol, leverage=pos.leverage, seq=pos.seq)


def position_row(
    pos: Position, spec: SymbolSpec, mark: Decimal, *, stream: bool, position_idx: int = 0
) -> dict[str, Any]:
    """A position as in ``/v5/position/list`` (or the ``position`` push).

    ``stopLoss`` / ``takeProfit`` hold the armed Full-mode stops, "0" when none (as
    Bybit's position rows send it); their trigger prices are Bybit's extra fields."""
    value = pos.value()
    im = abs(pos.size) * mark / pos.leverage
    mm = abs(pos.size) * mark * Decimal("0.005")
    if pos.size > 0:
        liq = pos.avg_price * (1 - 1 / pos.leverage + Decimal("0.005"))
    elif pos.size < 0:
        liq = pos.avg_price * (1 + 1 / pos.leverage - Decimal("0.005"))
    else:
        liq = Decimal(0)
    fee_per_unit = pos.avg_price * Decimal("0.0011")
    break_even = pos.avg_price + (fee_per_unit if pos.size > 0 else -fee_per_unit)
    entry = _px(spec, pos.avg_price) if pos.size else "0"
    row: dict[str, Any] = {
        "positionIdx": position_idx,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": pos.symbol,
        "side": pos.side,
        "size": _qty(spec, abs(pos.size)) if pos.size else "0",
        "avgPrice": entry,
        "positionValue": money(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if pos.size else 0,
        "leverage": format(pos.leverage.normalize(), "f"),
        "breakEvenPrice": _px(spec, break_even) if pos.size else "0",
        "positionBalance": money(im),
        "markPrice": _px(spec, mark),
        "liqPrice": _px(spec, liq) if pos.size else "",
        "bustPrice": "",
        "positionMM": money(mm),
        "positionMMByMp": money(mm),
        "positionIM": money(im),
        "positionIMByMp": money(im),
        "tpslMode": "Full",
        "takeProfit": _px(spec, pos.take_profit) if pos.take_profit else "0",
        "stopLoss": _px(spec, pos.stop_loss) if pos.stop_loss else "0",
        "trailingStop": "0",
        "unrealisedPnl": money(pos.unrealised(mark)) if pos.size else "0",
        "curRealisedPnl": money(pos.cur_realised),
        "cumRealisedPnl": money(pos.cum_realised),
        "seq": pos.seq,
        "isReduceOnly": False,
        "mmrSysUpdateTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(pos.created_ms),
        "updatedTime": str(pos.updated_ms),
    }
    if stream:
        row["entryPrice"] = row.pop("avgPrice")
        row["mmrSysUpdatedTime"] = row.pop("mmrSysUpdateTime")
        row["category"] = "linear"
    return row


def closed_pnl_row(record: ClosedPnlRecord, spec: SymbolSpec) -> dict[str, Any]:
    """A closing order's result as in ``/v5/position/closed-pnl`` (``closedPnl`` net of
    the opening and closing fees of the closed quantity)."""
    order = record.order
    size = record.closed_size
    return {
        "symbol": order.symbol,
        "orderType": order.order_type,
        "leverage": format(record.leverage.normalize(), "f"),
        "updatedTime": str(record.updated_ms),
        "side": order.side,
        "orderId": order.order_id,
        "closedPnl": money(record.net),
        "avgEntryPrice": money(record.entry_value / size) if size else "0",
        "qty": _qty(spec, order.qty),
        "cumEntryValue": money(record.entry_value),
        "createdTime": str(record.created_ms),
        "orderPrice": _px(spec, order.price),
        "closedSize": _qty(spec, size),
        "avgExitPrice": money(record.exit_value / size) if size else "0",
        "execType": record.exec_type,
        "fillCount": str(record.fill_count),
        "cumExitValue": money(record.exit_value),
    }


def wallet_row(account: Account, marks: dict[str, Decimal]) -> dict[str, Any]:
    """The UNIFIED account as in ``/v5/account/wallet-balance`` (and the ``wallet`` push)."""
    fig = account.figures(marks)
    equity = fig["equity"]
    im = fig["initialMargin"]
    mm = fig["totalPositionMM"]
    im_rate = im / equity if equity > 0 else Decimal(0)
    mm_rate = mm / equity if equity > 0 else Decimal(0)
    coin = {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": "",
        "totalOrderIM": money(fig["totalOrderIM"]),
        "equity": money(equity),
        "totalPositionMM": money(mm),
        "usdValue": money(equity),
        "spotHedgingQty": "0",
        "unrealisedPnl": money(fig["unrealisedPnl"]),
        "collateralSwitch": True,
        "borrowAmount": "0",
        "totalPositionIM": money(fig["totalPositionIM"]),
        "walletBalance": money(fig["walletBalance"]),
        "cumRealisedPnl": money(account.cum_realised),
        "locked": "0",
        "marginCollateral": True,
        "coin": "USDT",
        "spotBorrow": "0",
    }
    return {
        "totalEquity": money(equity),
        "accountIMRate": money(im_rate.quantize(Decimal("0.0001"))),
        "accountIMRateByMp": money(im_rate.quantize(Decimal("0.0001"))),
        "totalMarginBalance": money(equity),
        "totalInitialMargin": money(im),
        "totalInitialMarginByMp": money(im),
        "accountType": "UNIFIED",
        "totalAvailableBalance": money(fig["available"]),
        "accountMMRate": money(mm_rate.quantize(Decimal("0.0001"))),
        "accountMMRateByMp": money(mm_rate.quantize(Decimal("0.0001"))),
        "totalPerpUPL": money(fig["unrealisedPnl"]),
        "totalWalletBalance": money(fig["walletBalance"]),
        "accountLTV": "0",
        "totalMaintenanceMargin": money(mm),
        "totalMaintenanceMarginByMp": money(mm),
        "coin": [coin],
    }
