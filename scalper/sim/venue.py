"""The venue: market + accounts + matching, and the fan-out of what changes.

``Exchange`` is the simulator without sockets. Tests drive it directly (inject a clock,
call ``step``/``create_order``) and the server wraps it. The market moves in ``step``;
orders go through the ``Matcher`` (``matching``). Every change ends in ``_flush``: the
private stream gets, per account and in Bybit's order, the ``order``, ``execution``,
``position`` and ``wallet`` pushes; the public hub gets the book deltas and trades.
Refusals raise ``VenueError`` with Bybit's retCode.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import rows
from .accounts import Account, ClosedPnlRecord, Order, Position
from .errors import VenueError
from .market import Market, PublicTrade, SymbolMarket
from .matching import Changes, Matcher
from .private import PrivateHub
from .public import PublicHub
from .specs import SymbolSpec

__all__ = ["Exchange"]


class Exchange:
    """The simulated venue: one synthetic market, accounts by API key, a matching engine."""

    def __init__(
        self,
        specs: tuple[SymbolSpec, ...],
        *,
        seed: int,
        rate: float,
        clock: Callable[[], int],
        credentials: dict[str, str],
        start_balance: Decimal = Decimal(100_000),
        hedge_mode: bool = False,
    ) -> None:
        self.specs = {spec.symbol: spec for spec in specs}
        self.market = Market(specs, seed=seed, rate=rate)
        self.clock = clock
        self.accounts = {
            key: Account(
                api_key=key, api_secret=secret, balance=start_balance, hedge_mode=hedge_mode
            )
            for key, secret in credentials.items()
        }
        self.public = PublicHub(self.market)
        self.private = PrivateHub()
        self.matcher = Matcher(
            self.market, self.accounts, seed=seed, clock=clock, flush=self._flush
        )
        self._last_advance: int | None = None
        self._carry = 0.0
        #: when True the market stands still (tests compare books at rest)
        self.paused = False

    # ------------------------------------------------------------------ time
    def now_ms(self) -> int:
        """The venue's clock (ms)."""
        return self.clock()

    def advance(self, now_ms: int, max_steps: int = 2_000) -> int:
        """Step the market for the time elapsed since the last call; return the steps made."""
        if self._last_advance is None or self.paused:
            self._last_advance = now_ms
            return 0
        elapsed = max(0, now_ms - self._last_advance)
        self._last_advance = now_ms
        due = elapsed * self.market.rate / 1000.0 + self._carry
        steps = int(due)
        self._carry = due - steps
        steps = min(steps, max_steps)
        for _ in range(steps):
            self.step(now_ms)
        return steps

    def hold(self, now_ms: int) -> None:
        """Let ``now_ms`` pass without stepping (backpressure: clients are behind)."""
        self._last_advance = now_ms
        self._carry = 0.0

    def step(self, now_ms: int) -> str:
        """One market step (next symbol, round-robin): resting fills, then the pushes."""
        symbol, trades = self.market.step(now_ms)
        self._after_move(symbol, trades, now_ms)
        return symbol

    def price_jump(self, symbol: str, pct: float, *, wick: bool = False) -> None:
        """Move ``symbol`` by ``pct`` percent at once (a fault: news, a liquidation cascade).

        ``wick``: only the book and the last price jump, for one step (the mark stays;
        the next step brings the book back): a LastPrice stop can fire, a MarkPrice one
        does not."""
        if symbol not in self.specs:
            raise VenueError(10001, f"params error: symbol invalid: {symbol}")
        now = self.now_ms()
        trades = self.market.step_symbol(symbol, now, jump=pct / 100.0, wick=wick)
        self._after_move(symbol, trades, now)

    def _after_move(self, symbol: str, trades: list[PublicTrade], now_ms: int) -> None:
        if self.matcher.resting[symbol]:
            self.matcher.fill_resting(symbol, trades, now_ms)
            self._flush(now_ms)
        # protective stops fire on the prices this step made (their closes print trades
        # of their own, published by the flush before this step's tape)
        self.matcher.check_stops(symbol, now_ms)
        if self.matcher.changes:
            self._flush(now_ms)
        self.public.publish(symbol, trades, now_ms)

    # ---------------------------------------------------------------- orders
    def create_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/create``: validate, accept, match; the order is returned.

        A taker order moves the last price: a LastPrice stop it crosses fires now."""
        order = self.matcher.create_order(account, params)
        now = self.now_ms()
        self.matcher.check_stops(order.symbol, now)
        if self.matcher.changes:
            self._flush(now)
        return order

    def amend_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/amend``: change qty and/or price of an open order."""
        return self.matcher.amend_order(account, params)

    def cancel_order(self, account: Account, params: dict[str, Any]) -> Order:
        """``POST /v5/order/cancel`` (orderId wins over orderLinkId)."""
        return self.matcher.cancel_order(account, params)

    def cancel_all(self, account: Account, params: dict[str, Any]) -> list[Order]:
        """``POST /v5/order/cancel-all`` by symbol, baseCoin or settleCoin."""
        return self.matcher.cancel_all(account, params)

    def set_leverage(self, account: Account, params: dict[str, Any]) -> None:
        """``POST /v5/position/set-leverage`` (one-way: buy == sell; 110043 when unchanged)."""
        self.matcher.set_leverage(account, params)

    def set_trading_stop(self, account: Account, params: dict[str, Any]) -> None:
        """``POST /v5/position/trading-stop`` (Full mode; 34040 when nothing changes)."""
        self.matcher.set_trading_stop(account, params)

    def close_position(self, symbol: str) -> int:
        """Flatten every account's position in ``symbol`` at market, from outside the bot."""
        return self.matcher.close_position(symbol)

    # ---------------------------------------------------------------- prices
    def sm(self, symbol: str) -> SymbolMarket:
        """The market state of a listed symbol."""
        return self.matcher.sm(symbol)

    def mark(self, symbol: str) -> Decimal:
        """Mark price of ``symbol`` (Decimal)."""
        return self.matcher.mark(symbol)

    def marks(self) -> dict[str, Decimal]:
        """Mark prices of every symbol."""
        return self.matcher.marks()

    # ------------------------------------------------------------- fan-out
    def _flush(self, now: int) -> None:
        """Push what changed: private order/execution/position/wallet, public book/trades."""
        matcher = self.matcher
        if matcher.changes:
            batches, matcher.changes = matcher.changes, {}
            marks = self.marks()
            for key, batch in batches.items():
                account = self.accounts[key]
                if not self.private.wants(key):
                    continue
                self.private.push(key, self._private_messages(account, batch, marks), now)
        if matcher.trades:
            pending, matcher.trades = matcher.trades, {}
            for symbol, trades in pending.items():
                self.public.publish(symbol, trades, now)

    def _private_messages(
        self, account: Account, batch: Changes, marks: dict[str, Decimal]
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        out: list[tuple[str, list[dict[str, Any]]]] = []
        if batch.orders:
            out.append(
                (
                    "order",
                    [
                        rows.order_row(o, self.specs[o.symbol], stream=True)
                        for o in batch.orders.values()
                    ],
                )
            )
        if batch.executions:
            out.append(
                (
                    "execution",
                    [
                        rows.execution_row(e, self.specs[e.order.symbol], stream=True)
                        for e in batch.executions
                    ],
                )
            )
            out.append(
                (
                    "execution.fast",
                    [
                        rows.execution_fast_row(e, self.specs[e.order.symbol])
                        for e in batch.executions
                    ],
                )
            )
        if batch.positions:
            out.append(
                (
                    "position",
                    [
                        row
                        for s in sorted(batch.positions)
                        for row in self.position_rows(account, s, stream=True)
                    ],
                )
            )
        out.append(("wallet", [rows.wallet_row(account, marks)]))
        return out

    # --------------------------------------------------------------- views
    def position_row(self, account: Account, symbol: str, *, stream: bool) -> dict[str, Any]:
        """One position in Bybit's shape, at the current mark (hedge mode: the row of
        the side that holds it, the buy side's when flat)."""
        pos: Position = account.position(symbol)
        idx = (2 if pos.size < 0 else 1) if account.hedge_mode else 0
        return rows.position_row(
            pos, self.specs[symbol], self.mark(symbol), stream=stream, position_idx=idx
        )

    def position_rows(self, account: Account, symbol: str, *, stream: bool) -> list[dict[str, Any]]:
        """The symbol's position rows: one in one-way mode, both sides (positionIdx 1
        and 2) in hedge mode, the side not held flat."""
        if not account.hedge_mode:
            return [self.position_row(account, symbol, stream=stream)]
        pos = account.position(symbol)
        spec, mark = self.specs[symbol], self.mark(symbol)
        flat = rows.flat_like(pos)
        buy = pos if pos.size > 0 else flat
        sell = pos if pos.size < 0 else flat
        return [
            rows.position_row(buy, spec, mark, stream=stream, position_idx=1),
            rows.position_row(sell, spec, mark, stream=stream, position_idx=2),
        ]

    def order_row(self, order: Order, *, stream: bool = False) -> dict[str, Any]:
        """One order in Bybit's shape."""
        return rows.order_row(order, self.specs[order.symbol], stream=stream)

    def wallet_row(self, account: Account) -> dict[str, Any]:
        """The account's wallet in Bybit's shape."""
        return rows.wallet_row(account, self.marks())

    def closed_pnl_row(self, record: ClosedPnlRecord) -> dict[str, Any]:
        """One closing order's result in Bybit's closed-pnl shape."""
        return rows.closed_pnl_row(record, self.specs[record.order.symbol])

    def state(self, account: Account) -> dict[str, Any]:
        """``GET /sim/state``: positions (with their stopLoss/takeProfit), open orders,
        order history, wallet."""
        history = sorted(account.orders.values(), key=lambda o: o.created_ms, reverse=True)
        return {
            "positions": [
                self.position_row(account, s, stream=False)
                for s, p in account.positions.items()
                if p.size != 0
            ],
            "open_orders": [self.order_row(o) for o in account.open_orders.values()],
            "order_history": [self.order_row(o) for o in history[:500]],
            "wallet": self.wallet_row(account),
        }
