"""Bybit's row objects -> ``scalper.core.model`` types (REST replies and private pushes).

An order, execution, position or wallet row has the same fields whether it comes from a
REST list or from a private WebSocket push, so one parser per row serves both: the REST
facade calls it directly (a ``ParseError`` names the field; list readers skip and count
a bad row), the stream parser calls it row by row through ``parse``. Bybit's field names
(``orderLinkId``, ``cumExecFee``, ``entryPrice``) stop here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Final

from scalper.core.model import (
    ClosedPnl,
    Fill,
    Instrument,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSnapshot,
    Side,
)

from .fields import (
    BAD_VALUE,
    WRONG_TYPE,
    ZERO,
    ParseError,
    as_array,
    as_object,
    read_bool,
    read_dec,
    read_enum,
    read_field,
    read_float,
    read_int,
    read_opt_int,
    read_opt_price,
    read_opt_str,
    read_str,
)
from .messages import BookMessage, CoinBalance, Ticker, WalletBalance

__all__ = [
    "book_from_rest",
    "closed_pnl_from_wire",
    "fill_from_wire",
    "instrument_from_wire",
    "order_from_wire",
    "position_from_wire",
    "ticker_from_wire",
    "wallet_from_wire",
]


@contextmanager
def _model_rules(row_kind: str) -> Iterator[None]:
    """A row whose values break a model type's rule (a negative qty) is a ``ParseError``.

    The model's validators raise ``TypeError`` / ``ValueError``; the field readers' own
    ``ParseError`` (a missing or malformed field) passes through as it is.
    """
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise ParseError(BAD_VALUE, f"{row_kind}: {exc}") from exc


def instrument_from_wire(row: Mapping[str, Any]) -> Instrument:
    """One ``instruments-info`` row -> ``Instrument``."""
    price = as_object(read_field(row, "priceFilter"), "priceFilter")
    lot = as_object(read_field(row, "lotSizeFilter"), "lotSizeFilter")
    max_qty = read_dec(lot, "maxOrderQty")
    with _model_rules("instrument"):
        return Instrument(
            symbol=read_str(row, "symbol"),
            tick_size=read_dec(price, "tickSize"),
            qty_step=read_dec(lot, "qtyStep"),
            min_qty=read_dec(lot, "minOrderQty"),
            max_qty=max_qty,
            max_mkt_qty=read_dec(lot, "maxMktOrderQty", empty=max_qty),
            min_notional=read_dec(lot, "minNotionalValue", empty=ZERO),
        )


def ticker_from_wire(row: Mapping[str, Any], *, partial: bool = False) -> Ticker:
    """A REST ticker row, or a stream ticker (``partial`` for deltas: fields optional)."""
    required = not partial
    return Ticker(
        symbol=read_str(row, "symbol"),
        last_price=read_float(row, "lastPrice", required=required),
        mark_price=read_float(row, "markPrice", required=False),
        price_24h_pcnt=read_float(row, "price24hPcnt", required=required),
        turnover_24h=read_float(row, "turnover24h", required=required),
        volume_24h=read_float(row, "volume24h", required=False),
        bid1_price=read_float(row, "bid1Price", required=False),
        bid1_size=read_float(row, "bid1Size", required=False),
        ask1_price=read_float(row, "ask1Price", required=False),
        ask1_size=read_float(row, "ask1Size", required=False),
        funding_rate=read_float(row, "fundingRate", required=False),
    )


def order_from_wire(row: Mapping[str, Any]) -> OrderUpdate:
    """An order row (REST realtime/history, or the ``order`` push) -> ``OrderUpdate``."""
    with _model_rules("order"):
        return OrderUpdate(
            symbol=read_str(row, "symbol"),
            order_id=read_str(row, "orderId"),
            order_link_id=read_opt_str(row, "orderLinkId"),
            side=read_enum(Side, row, "side"),
            order_type=read_enum(OrderType, row, "orderType"),
            status=read_enum(OrderStatus, row, "orderStatus"),
            qty=read_dec(row, "qty"),
            price=read_opt_price(row, "price"),
            avg_price=read_opt_price(row, "avgPrice"),
            cum_exec_qty=read_dec(row, "cumExecQty", empty=ZERO),
            leaves_qty=read_dec(row, "leavesQty", empty=ZERO),
            reject_reason=read_opt_str(row, "rejectReason"),
            updated_ms=read_opt_int(row, "updatedTime"),
            stop_order_type=_unset(read_opt_str(row, "stopOrderType")),
            create_type=_unset(read_opt_str(row, "createType")),
            cum_fee=_order_fee(row),
        )


#: the settle coin of every contract this bot trades
_SETTLE_COIN: Final = "USDT"


def _unset(value: str) -> str:
    """Bybit's unset enum: "UNKNOWN" over REST, "" on the stream; both read as ""."""
    return "" if value == "UNKNOWN" else value


def _order_fee(row: Mapping[str, Any]) -> Decimal:
    """An order's cumulative fee in the settle coin: ``cumFeeDetail[USDT]`` (the field
    Bybit documents for linear), else the deprecated ``cumExecFee``; 0 when neither."""
    detail = row.get("cumFeeDetail")
    if detail is not None and detail != "":
        coins = as_object(detail, "cumFeeDetail")
        if _SETTLE_COIN in coins:
            return read_dec(coins, _SETTLE_COIN, empty=ZERO)
        if coins:  # fees in another coin only (e.g. a fee discount token): none in USDT
            return ZERO
    return read_dec(row, "cumExecFee", empty=ZERO)


def closed_pnl_from_wire(row: Mapping[str, Any]) -> ClosedPnl:
    """One closed-PnL row (``paths.POSITION_CLOSED_PNL``) -> ``ClosedPnl``; ``closedPnl``
    is net of fees."""
    with _model_rules("closed-pnl"):
        return ClosedPnl(
            symbol=read_str(row, "symbol"),
            order_id=read_str(row, "orderId"),
            side=read_enum(Side, row, "side"),
            qty=read_dec(row, "qty", empty=ZERO),
            closed_size=read_dec(row, "closedSize"),
            avg_entry_price=read_dec(row, "avgEntryPrice", empty=ZERO),
            avg_exit_price=read_dec(row, "avgExitPrice", empty=ZERO),
            closed_pnl=read_dec(row, "closedPnl"),
            exec_type=read_opt_str(row, "execType", "Trade"),
            created_ms=read_int(row, "createdTime"),
            updated_ms=read_int(row, "updatedTime"),
        )


def fill_from_wire(row: Mapping[str, Any]) -> Fill | None:
    """An execution row -> ``Fill``; None for non-trade executions (funding, ADL...).

    ``execution.fast`` rows carry no fee: their ``fee`` reads 0.
    """
    exec_type = read_opt_str(row, "execType", "Trade")
    if exec_type != "Trade":
        return None
    with _model_rules("execution"):
        return Fill(
            exec_id=read_str(row, "execId"),
            order_id=read_str(row, "orderId"),
            order_link_id=read_opt_str(row, "orderLinkId"),
            symbol=read_str(row, "symbol"),
            side=read_enum(Side, row, "side"),
            price=read_dec(row, "execPrice"),
            qty=read_dec(row, "execQty"),
            fee=read_dec(row, "execFee", empty=ZERO),
            is_maker=read_bool(row, "isMaker"),
            exec_time_ms=read_int(row, "execTime"),
        )


def position_from_wire(row: Mapping[str, Any]) -> PositionSnapshot:
    """A position row -> ``PositionSnapshot`` (REST ``avgPrice``, stream ``entryPrice``).

    Flat (``side`` "" or size 0) reads as ``side=None, size=0``. ``realised_pnl`` is
    Bybit's ``cumRealisedPnl`` (cumulative over the symbol's life). ``stopLoss`` /
    ``takeProfit`` of ``""``, ``"0"`` or ``"0.00"`` mean no stop armed (None);
    ``positionIdx`` 1/2 marks a hedge-mode account.
    """
    size = read_dec(row, "size", empty=ZERO)
    side_s = read_str(row, "side")
    side: Side | None
    if side_s in ("", "None") or size == 0:
        side, size = None, ZERO
    else:
        side = read_enum(Side, row, "side")
    price_key = "avgPrice" if "avgPrice" in row else "entryPrice"
    with _model_rules("position"):
        return PositionSnapshot(
            symbol=read_str(row, "symbol"),
            side=side,
            size=size,
            avg_price=read_dec(row, price_key) if side is not None else ZERO,
            unrealised_pnl=read_dec(row, "unrealisedPnl", empty=ZERO),
            realised_pnl=read_dec(row, "cumRealisedPnl", empty=ZERO),
            stop_loss=read_opt_price(row, "stopLoss"),
            take_profit=read_opt_price(row, "takeProfit"),
            position_idx=_position_idx(row),
        )


def _position_idx(row: Mapping[str, Any]) -> int:
    """``positionIdx``: 0 one-way, 1/2 hedge mode (absent: 0); anything else is malformed."""
    if "positionIdx" not in row:
        return 0
    idx = read_int(row, "positionIdx")
    if idx not in (0, 1, 2):
        raise ParseError(BAD_VALUE, f"'positionIdx'={idx!r} is not 0, 1 or 2")
    return idx


def wallet_from_wire(row: Mapping[str, Any]) -> WalletBalance:
    """One wallet-balance account row (REST ``result.list[i]`` or the ``wallet`` push)."""
    coins = tuple(
        CoinBalance(
            coin=read_str(c, "coin"),
            equity=read_dec(c, "equity", empty=ZERO),
            wallet_balance=read_dec(c, "walletBalance", empty=ZERO),
            unrealised_pnl=read_dec(c, "unrealisedPnl", empty=ZERO),
            cum_realised_pnl=read_dec(c, "cumRealisedPnl", empty=ZERO),
            locked=read_dec(c, "locked", empty=ZERO),
        )
        for c in (as_object(x, "coin row") for x in as_array(row.get("coin", []), "coin"))
    )
    return WalletBalance(
        account_type=read_opt_str(row, "accountType"),
        total_equity=read_dec(row, "totalEquity", empty=ZERO),
        total_wallet_balance=read_dec(row, "totalWalletBalance", empty=ZERO),
        total_available_balance=read_dec(row, "totalAvailableBalance", empty=ZERO),
        total_perp_upl=read_dec(row, "totalPerpUPL", empty=ZERO),
        coins=coins,
    )


def _levels(v: Any, what: str) -> list[list[str]]:
    levels = as_array(v, what)
    for level in levels:
        if type(level) is not list or len(level) != 2:
            raise ParseError(WRONG_TYPE, f"{what} level {level!r} is not [price, size]")
    return levels


def book_from_rest(result: Mapping[str, Any]) -> BookMessage:
    """The ``result`` of the REST book (``paths.MARKET_ORDERBOOK``) -> a snapshot
    ``BookMessage``."""
    return BookMessage(
        symbol=read_str(result, "s"),
        kind="snapshot",
        bids=_levels(read_field(result, "b"), "b"),
        asks=_levels(read_field(result, "a"), "a"),
        update_id=read_int(result, "u"),
        seq=read_opt_int(result, "seq"),
        ts_ms=read_int(result, "ts"),
    )
