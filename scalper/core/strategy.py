"""The trading engine: one state machine, fed events, returning commands.

This module is the engine's public face; the parts live in their own core modules:

* ``core.engine``: ``Engine`` and its transition table ``TABLE`` (state, event type)
  -> handler, the states each may move to; ``docs/engine.md`` is generated from it.
* ``core.table``: the rows, and what a handler returns (``STAY`` or a ``Move``:
  next state and cause), which only the engine's dispatch carries out.
* ``core.machine``: the engine's state, the one place it changes, and shared steps;
  ``core.closing``: leaving a position (exits, closes, halts);
  ``core.handlers_market`` and ``core.handlers_control``: what each event does.
* ``core.conditions`` and ``core.protection``: the orthogonal conditions (reconciling,
  the operator's pause and flatten, the halt and its latch, the exit, the exchange stop).
* ``core.orderids``: our ``orderLinkId`` scheme; ``core.accounting``: position and PnL
  arithmetic; ``core.exits``: when to close and where the stops are;
  ``core.engine_config``: the settings the engine decides with.

Rules that hold in every state
------------------------------

* Market data (``BookUpdate``, ``TradeTicks``) and ``Tick`` are normal in every state:
  they feed the signal window and the book, and drive time rules (close retry, max
  hold, staleness). Data for a symbol other than the current one is ignored,
  with a rate-limited debug ``Log``.
* Control events (``PositionSnapshot``, ``OpenOrders``, ``SymbolSelected``, ``Halt``,
  ``Resync``) are accepted in every state; what they do depends on the state.
* Order events (``OrderAccepted``, ``OrderPartiallyFilled``, ``OrderFilled``,
  ``OrderFailed``) drive the working order in OrderPending, ClosingPosition and
  Halted. Anywhere, an order event for an order this engine issued but no longer
  tracks (it ended, or was let go after a snapshot) is a *late report*: it is logged
  and, when it carries a fill, answered with ``RequestPosition`` (the exchange
  settles the size). An order event for an id this engine never issued is a bug in
  the caller: ``EngineError``, and nothing changes.
* The exchange is the source of truth: a ``PositionSnapshot`` that disagrees wins.
  Snapshots race with fills, so while an order is working they are read carefully:

  - OrderPending: a non-flat snapshot means the entry filled at least partly: adopt
    it, cancel the rest of the entry, go to PositionOpen. A flat one is ignored (it
    may predate the fill).
  - ClosingPosition: a flat snapshot means the close is done: Idle. A non-flat one is
    ignored (it may predate the fill; the close's outcome and the position read after
    it settle the size).
  - otherwise: flat while holding -> Idle + Alert "position closed outside the bot";
    non-flat while flat -> adopt (PositionOpen); a different size/side -> adopt the
    exchange's.

* Entries need all of: Idle, a current symbol, reconciled since the last Resync/switch,
  no pending symbol switch, no order let go whose end is unconfirmed, a valid book and
  a trade, both within ``stale_ms`` of now, spread <= ``max_spread_bps``, the window
  ready and |momentum| > threshold, a size that passes the instrument's limits, and the
  risk gate. Exits need only a position and a price (book mid, or last trade when the
  book is invalid, whichever is newer): they are never gated by staleness.
* Halted is final until restart: no entry, ever. A position still open there keeps
  its stop-loss / take-profit, and is closed at once when ``flatten_on_halt``. The
  daily-loss kill switch (``risk.RiskGate``) halts the engine the same way.
* Every state change is returned as ``Transition(before, after, cause)``; skips are
  ``Log`` commands, rate-limited to once per state entry (once per interval for data
  of other symbols) so a tick stream does not flood the log.

Numbers: market data is float; everything in an order is Decimal, converted with
``instrument.to_decimal`` and rounded with the instrument's rules.
"""

from __future__ import annotations

from .accounting import Position
from .engine import TABLE, TRANSITIONS, Engine
from .engine_config import EngineConfig
from .machine import EngineError
from .orderids import is_own_order_link_id, make_session_tag

__all__ = [
    "TABLE",
    "TRANSITIONS",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Position",
    "is_own_order_link_id",
    "make_session_tag",
]
