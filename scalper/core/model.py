"""Value types shared by every part of scalper: market data, orders, events, commands.

Everything here is a frozen attrs class. Two rules shape it:

* Market data is ``float``. It arrives thousands of times a second, is only ever
  compared and averaged, and Decimal would cost ~4x on that hot path.
* Anything that becomes part of an order is ``Decimal``: an order carries exact
  prices and quantities already rounded to the instrument's grid. ``OrderIntent``'s
  validators refuse a float, so a float can never reach the exchange.

The engine (``core.strategy``) consumes the *events* (``core.events``) and emits the
*commands* (``core.commands``), both built of the value types of ``core.values``;
the trio shell carries commands out and feeds outcomes back as events. Bybit's wire
names never appear here: ``bybit.parse`` translates at the edge.

The names are those of the three modules' ``__all__`` (as asyncio's package does),
so a type added there is exported here without a second list to keep in step.
"""

from __future__ import annotations

from . import commands, events, values
from .commands import *  # noqa: F403
from .events import *  # noqa: F403
from .values import *  # noqa: F403

__all__: list[str] = []
__all__ += commands.__all__
__all__ += events.__all__
__all__ += values.__all__
