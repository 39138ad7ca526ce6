"""What every group of typed REST endpoints shares: the retried call, paging, and reading
``result.list`` into core types.

``BybitRest`` is put together from three groups (``market``, ``account``, ``trading``),
each a mixin of ``Endpoints``: they send through the same ``Retrier`` and count the rows
they skip in the same ``ParseStats``, so these helpers are written once here. The
facade (``rest``) sets ``_retrier`` and ``parse_stats`` when it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .errors import ProtocolError
from .fields import ParseError, ParseStats
from .paths import CATEGORY
from .retry import Retrier

__all__ = ["Endpoints", "need_id", "order_params", "parsed_row", "result_list"]

_T = TypeVar("_T")


def need_id(order_link_id: str | None, order_id: str | None) -> None:
    """An order is named by its orderLinkId or its orderId: one must be given."""
    if not order_link_id and not order_id:
        raise ValueError("give order_link_id or order_id")


def order_params(
    symbol: str, order_link_id: str | None, order_id: str | None, **more: Any
) -> dict[str, Any]:
    """The parameters that name one order (or filter by it), in the order Bybit signs
    them: category, symbol, orderId, orderLinkId, then ``more``. An id of None is left
    out of the request."""
    return {
        "category": CATEGORY,
        "symbol": symbol,
        "orderId": order_id,
        "orderLinkId": order_link_id,
        **more,
    }


def result_list(result: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """``result.list`` of a reply, checked to be a list of objects."""
    rows = result.get("list", [])
    if type(rows) is not list or any(type(r) is not dict for r in rows):
        raise ProtocolError(f"{path}: result.list is not a list of objects")
    return rows


def parsed_row(fn: Callable[[Mapping[str, Any]], _T], row: Mapping[str, Any], path: str) -> _T:
    """``fn(row)``, a parse error naming the path it came from."""
    try:
        return fn(row)
    except ParseError as exc:
        raise ParseError(exc.kind, f"{path}: {exc}") from exc


class Endpoints:
    """Base of the endpoint groups: the retried call and the list helpers they share."""

    _retrier: Retrier
    #: rows of list replies that could not be parsed (skipped)
    parse_stats: ParseStats

    async def _paged(
        self, path: str, params: Mapping[str, Any], *, signed: bool = True, max_pages: int = 50
    ) -> list[dict[str, Any]]:
        """Every row of a listing, following ``nextPageCursor`` (at most ``max_pages``)."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(max_pages):
            result = await self._retrier.call(
                "GET", path, {**params, "cursor": cursor}, signed=signed
            )
            rows.extend(result_list(result, path))
            nxt = result.get("nextPageCursor")
            if not nxt or type(nxt) is not str or nxt == cursor:
                return rows
            cursor = nxt
        raise ProtocolError(f"{path}: more than {max_pages} pages")

    def _good_rows(
        self,
        fn: Callable[[Mapping[str, Any]], _T],
        rows: Iterable[Mapping[str, Any]],
        what: str,
        key: str,
    ) -> list[_T]:
        """``fn`` of every row that parses; a bad row is counted in ``parse_stats`` (named
        by ``what`` and its ``key`` field) and skipped, so one bad row cannot hide the
        others."""
        out: list[_T] = []
        for row in rows:
            try:
                out.append(fn(row))
            except ParseError as exc:
                self.parse_stats.record(exc.kind, f"{what} {row.get(key)}: {exc}")
        return out
